import { eventIds, EVENT_VERSION, ticketOf, type CampaignEvent, type LineHeadSigned } from '../domain/events.js';
import { leafOf, type FairnessKey } from '../domain/fairness/line.js';
import { leafHash, MerkleFrontier, toHex } from '../domain/fairness/merkle.js';

/** A new entrant of a campaign's line, as the writer placed it. */
export interface NewLeaf {
  position: number;
  ticket: string;
  userId: string;
  /** the entry's time in the log */
  at: string;
}

/** A campaign's line as Redis holds it: users by rank, with their first offsets (the tickets). */
export type LineReader = (campaignId: string) => Promise<{ userId: string; offset: bigint }[]>;

interface CampaignTree {
  frontier: MerkleFrontier;
  /** the log time of the newest leaf this process saw */
  lastAt: string | null;
  /** the size of the last head made, and when (this process's clock: only the pace) */
  signedSize: number;
  signedAtMs: number;
  final: boolean;
}

/**
 * The single writer's side of issue 31: each campaign's line as an RFC 9162 tree, grown as the
 * writer places new entrants, and the heads it signs into the log with its decisions.
 *
 * The tree is a pure function of the line Redis holds (users by rank, their first offsets) and
 * FAIRNESS_KEY, so it is not stored: a campaign met for the first time since start or since a
 * rebuild is read back from Redis once (after the batch's places, so it already holds them), and
 * grows from there. Only its compact range is kept: O(log n) memory, about one node hash per leaf.
 * A head is made at most once a second per campaign, at sell-out, and at close (the final head);
 * its `at` is the log time of the newest leaf it covers (of the close, for the final head).
 */
export class LineHeads {
  private readonly trees = new Map<string, CampaignTree>();

  constructor(
    private readonly key: FairnessKey,
    private readonly partition: number,
    private readonly readLine: LineReader,
    private readonly everyMs = 1000,
  ) {}

  /** A rebuild starts: trees are read back from the rebuilt line. */
  clear(): void {
    this.trees.clear();
  }

  /**
   * The leaves placed by one batch, per campaign, and the heads due: `soldOut` campaigns sold out
   * in it, `closed` campaigns (with the close's log time) closed in it.
   */
  async heads(
    placed: ReadonlyMap<string, NewLeaf[]>,
    soldOut: ReadonlySet<string>,
    closed: ReadonlyMap<string, string>,
    now = Date.now(),
  ): Promise<LineHeadSigned[]> {
    const out: LineHeadSigned[] = [];
    for (const campaignId of new Set([...placed.keys(), ...closed.keys()])) {
      const t = await this.grow(campaignId, placed.get(campaignId) ?? []);
      const closedAt = closed.get(campaignId);
      if (closedAt !== undefined && !t.final) {
        t.final = true;
        out.push(this.sign(campaignId, t, closedAt, true, now));
      } else if (!t.final && t.frontier.size > t.signedSize && (soldOut.has(campaignId) || now - t.signedAtMs >= this.everyMs)) {
        out.push(this.sign(campaignId, t, t.lastAt!, false, now));
      }
    }
    return out;
  }

  /** Campaigns whose newest leaves no head covers yet, a second after their last head: heads for a commit of their own. */
  due(now = Date.now()): LineHeadSigned[] {
    const out: LineHeadSigned[] = [];
    for (const [campaignId, t] of this.trees)
      if (!t.final && t.lastAt !== null && t.frontier.size > t.signedSize && now - t.signedAtMs >= this.everyMs)
        out.push(this.sign(campaignId, t, t.lastAt, false, now));
    return out;
  }

  private sign(campaignId: string, t: CampaignTree, at: string, final: boolean, now: number): LineHeadSigned {
    const size = t.frontier.size;
    // the form GraphQL's DateTime gives back, so the string a verifier rebuilds is the one signed
    const head = this.key.sign({ campaignId, size, root: toHex(t.frontier.root()), at: new Date(at).toISOString() });
    t.signedSize = size;
    t.signedAtMs = now;
    return {
      type: 'LineHeadSigned',
      version: EVENT_VERSION,
      eventId: eventIds.head(campaignId, size, final),
      campaignId,
      occurredAt: new Date(now).toISOString(),
      size,
      root: head.root,
      at: head.at,
      keyId: head.keyId,
      signature: head.signature,
      final,
    };
  }

  private async grow(campaignId: string, leaves: readonly NewLeaf[]): Promise<CampaignTree> {
    let t = this.trees.get(campaignId);
    // a leaf past the next place means this tree missed some (a commit sent back): read it again
    if (t && leaves.length > 0 && leaves[0]!.position > t.frontier.size + 1) t = undefined;
    if (!t) {
      t = { frontier: new MerkleFrontier(), lastAt: null, signedSize: 0, signedAtMs: 0, final: false };
      for (const [i, { userId, offset }] of (await this.readLine(campaignId)).entries())
        t.frontier.append(
          leafHash(leafOf(campaignId, i + 1, ticketOf(this.partition, offset), userId, this.key.nonce(campaignId, userId))),
        );
      this.trees.set(campaignId, t);
    }
    for (const l of leaves) {
      if (l.position === t.frontier.size + 1)
        t.frontier.append(leafHash(leafOf(campaignId, l.position, l.ticket, l.userId, this.key.nonce(campaignId, l.userId))));
      if (l.position <= t.frontier.size) t.lastAt = l.at;
    }
    return t;
  }
}

// What a batch's decisions say about the heads due (partitionWriter.ts's decide).

export function pushTo<T>(m: Map<string, T[]>, key: string, value: T): void {
  const list = m.get(key);
  if (list) list.push(value);
  else m.set(key, [value]);
}

export const soldOutIn = (outputs: readonly CampaignEvent[]) =>
  new Set(outputs.filter((e) => e.type === 'CampaignSoldOut').map((e) => e.campaignId));

/**
 * campaign → the log time of its close, for closes decided anew in this batch (the final head).
 * Only the campaign's first close counts (`terms`, evolved through the batch, holds its time): a
 * second one (an admin's and the schedule's racing) signs nothing more.
 */
export function closedIn(
  facts: readonly { event: CampaignEvent; replaying: boolean }[],
  terms: ReadonlyMap<string, { closedAt: number | null }>,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const { event: e, replaying } of facts)
    if (
      !replaying &&
      e.type === 'CampaignClosed' &&
      !out.has(e.campaignId) &&
      terms.get(e.campaignId)?.closedAt === Date.parse(e.occurredAt)
    )
      out.set(e.campaignId, e.occurredAt);
  return out;
}
