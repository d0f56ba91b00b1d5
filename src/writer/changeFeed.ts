import type { CampaignTerms } from '../domain/campaign.js';
import type { CampaignEvent } from '../domain/events.js';
import type { CampaignLines, LineAnswer, LineWork, ReplyChannel } from './ports.js';
import type { Reply } from './replies.js';

/**
 * What the writer announces after it told or applied something: per campaign, the users whose
 * entries changed (an empty list: only the campaign's own facts or counters did). `at` is when the
 * writer announced it (ms since the epoch), so a subscriber can tell commit → socket latency.
 */
export interface ChangeNotice {
  campaignId: string;
  users: string[];
  at: number;
  /** the size of a head the writer signed (issue 31): every entry it covers has a receipt once the read model holds it */
  head?: number;
}

/** Where the writer's notices go: API processes push from them to their sockets. */
export interface ChangeFeed {
  announce(notices: readonly Omit<ChangeNotice, 'at'>[]): Promise<void>;
}

function byCampaign(pairs: Iterable<[string, string | null]>): Omit<ChangeNotice, 'at'>[] {
  const out = new Map<string, Set<string>>();
  for (const [campaignId, user] of pairs) {
    const users = out.get(campaignId) ?? new Set<string>();
    if (user !== null) users.add(user);
    out.set(campaignId, users);
  }
  return [...out].map(([campaignId, users]) => ({ campaignId, users: [...users] }));
}

/** The users whose entries a batch of committed decisions changed, and the campaigns they touch. */
export function noticesOfCommitted(events: readonly CampaignEvent[]): Omit<ChangeNotice, 'at'>[] {
  const notices: Omit<ChangeNotice, 'at'>[] = byCampaign(
    events.map((e): [string, string | null] =>
      e.type === 'WinnerSelected' || e.type === 'GifticonIssued' ? [e.campaignId, e.userId] : [e.campaignId, null],
    ),
  );
  for (const e of events) {
    if (e.type !== 'LineHeadSigned') continue;
    const n = notices.find((x) => x.campaignId === e.campaignId)!;
    n.head = Math.max(n.head ?? 0, e.size);
  }
  return notices;
}

/** The reply channel, announcing every decision it tells (the places reach subscribers as they reach callers). */
export class AnnouncingReplies implements ReplyChannel {
  constructor(
    private readonly inner: ReplyChannel,
    private readonly feed: ChangeFeed,
  ) {}

  async tell(replies: readonly { instance: string; reply: Reply }[]): Promise<void> {
    await Promise.all([
      this.inner.tell(replies),
      this.feed.announce(byCampaign(replies.map(({ reply }) => [reply.campaignId, reply.userId]))),
    ]);
  }
}

/**
 * Facts another process appended that change an answer: a campaign's own (created, closed, its
 * challenge), and a winner's gifticon the issuer issued or parked (a PROVIDER winner's ISSUED or
 * FAILED, pushed to the winner's subscription like the writer's own decisions).
 */
const ANNOUNCED_FACTS: ReadonlySet<CampaignEvent['type']> = new Set([
  'CampaignCreated',
  'CampaignClosed',
  'CampaignChallengeSet',
  'GifticonIssued',
  'IssuanceParked',
]);

const userOf = (e: CampaignEvent): string | null => (e.type === 'GifticonIssued' || e.type === 'IssuanceParked' ? e.userId : null);

/**
 * The campaign lines, announcing what reaches Redis: committed decisions (winners, gifticons, sold
 * out) once applied, and a campaign's own facts (created, closed) once placed. Nothing is announced
 * while a rebuild re-applies the past: it changes no answer.
 */
export class AnnouncingLines implements CampaignLines {
  constructor(
    private readonly inner: CampaignLines,
    private readonly feed: ChangeFeed,
  ) {}

  isBuilt(partition: number, steps?: boolean) {
    return this.inner.isBuilt(partition, steps);
  }
  markBuilt(partition: number) {
    return this.inner.markBuilt(partition);
  }
  wipeUnderWay(partition: number) {
    return this.inner.wipeUnderWay(partition);
  }
  rebuildProgress(partition: number, next: bigint, until: bigint) {
    return this.inner.rebuildProgress(partition, next, until);
  }
  finishRebuild(partition: number, campaigns: Iterable<string>) {
    return this.inner.finishRebuild(partition, campaigns);
  }
  terms(campaignIds: readonly string[]): Promise<Map<string, CampaignTerms>> {
    return this.inner.terms(campaignIds);
  }
  dueCodes(campaignId: string, stock: number) {
    return this.inner.dueCodes(campaignId, stock);
  }

  async place(partition: number, work: LineWork): Promise<LineAnswer[][] | 'REBUILD'> {
    const placed = await this.inner.place(partition, work);
    if (placed === 'REBUILD') return placed;
    const facts = work.facts.filter((f) => !f.replaying && ANNOUNCED_FACTS.has(f.event.type));
    const own = facts.filter((f) => userOf(f.event) === null);
    const winners = facts.filter((f) => userOf(f.event) !== null);
    if (own.length > 0) await this.feed.announce(byCampaign(own.map((f) => [f.event.campaignId, null])));
    // not awaited, as applyCommitted's: in a PROVIDER drop the issuer's gifticons come in with the
    // entries, and the line's next batch need not wait for a notice (its PUBLISH still follows the
    // writes on the same connection)
    if (winners.length > 0)
      void this.feed.announce(byCampaign(winners.map((f) => [f.event.campaignId, userOf(f.event)]))).catch(() => undefined);
    return placed;
  }

  async applyCommitted(partition: number, events: readonly CampaignEvent[]): Promise<boolean> {
    const ok = await this.inner.applyCommitted(partition, events);
    // not awaited: the next commit waits on this one, and a notice is no part of it (a PUBLISH
    // after the apply on the same connection still reaches subscribers after the apply)
    if (ok) void this.feed.announce(noticesOfCommitted(events));
    return ok;
  }
}
