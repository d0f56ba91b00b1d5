import { decideEntry, evolveTerms, outcomeOf, type CampaignTerms } from '../../src/domain/campaign.js';
import { CHALLENGE_OFF, evolveChallenge, type ChallengeSetting } from '../../src/domain/challenge.js';
import { storedCodeOf, ticketOf, type Logged } from '../../src/domain/events.js';

/**
 * What one fetched batch of the log changes in the tables, as a pure function of the batch and of
 * what the tables already hold. The projector reads `needsOf(batch)` from Postgres, plans, and
 * writes the plan in the same transaction as the partition's checkpoint.
 *
 * Places and terms follow the domain's rules (`decideEntry`, `evolveTerms`): the first admitted
 * EntrantRegistered of each distinct user gets the next position; a user already in `entries`
 * keeps theirs, so applying events a second time (another campaign of the partition being
 * replayed) changes nothing.
 */

/** A campaign as the tables hold it before the batch. */
export interface KnownCampaign {
  terms: CampaignTerms;
  /** distinct users placed so far */
  entrants: number;
}

export interface Known {
  campaigns: ReadonlyMap<string, KnownCampaign>;
  /** campaign → those users named by the batch who already have an entry */
  placed: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface BatchNeeds {
  campaignIds: string[];
  /** campaign → the offset of its first EntrantRegistered in the batch */
  firstEntry: Map<string, bigint>;
}

export interface CampaignRow {
  id: string;
  title: string;
  reward: string;
  stock: number;
  opensAt: Date;
  closesAt: Date;
  createdAt: Date;
  challengeMode: ChallengeSetting['mode'];
  challengeDifficulty: number | null;
}

export interface EntryRow {
  campaignId: string;
  userId: string;
  ticket: string;
  position: number;
  status: 'WON' | 'LOST';
  logOffset: bigint;
  /** the event's occurredAt in the form toISOString gives (`isoOf`), for Postgres to parse */
  enteredAt: string;
}

export interface WinnerRow {
  campaignId: string;
  userId: string;
  position: number;
  wonAt: Date;
}

export interface GifticonRow {
  id: string;
  campaignId: string;
  userId: string;
  code: string;
  issuedAt: Date;
  /** a PROVIDER voucher's expiry */
  expiresAt: Date | null;
  logOffset: bigint;
}

/** A PROVIDER winner's issuance parked (IssuanceParked): its gifticon reads FAILED until one is issued. */
export interface ParkedIssuanceRow {
  campaignId: string;
  userId: string;
  at: Date;
}

/** Counter increments and first-time facts of one campaign; timestamps apply only where still null. */
export interface CampaignChange {
  entrants: number;
  firstEntryAt: Date | null;
  closedAt: Date | null;
  soldOutAt: Date | null;
  /** the proof-of-work setting after the batch's last CampaignChallengeSet, if it has one: set as it is, not only where null */
  challenge: ChallengeSetting | null;
}

/** A signed head of a campaign's line, as its LineHeadSigned event gives it. */
export interface HeadRow {
  campaignId: string;
  size: number;
  final: boolean;
  root: string;
  at: string;
  keyId: string;
  signature: string;
  logOffset: bigint;
}

export interface Plan {
  heads: HeadRow[];
  campaigns: CampaignRow[];
  entries: EntryRow[];
  winners: WinnerRow[];
  gifticons: GifticonRow[];
  parkedIssuances: ParkedIssuanceRow[];
  changes: Map<string, CampaignChange>;
}

export function needsOf(batch: readonly Logged[]): BatchNeeds {
  const ids = new Set<string>();
  const firstEntry = new Map<string, bigint>();
  for (const { event, offset } of batch) {
    ids.add(event.campaignId);
    if (event.type === 'EntrantRegistered' && !firstEntry.has(event.campaignId)) firstEntry.set(event.campaignId, offset);
  }
  return { campaignIds: [...ids], firstEntry };
}

/** Of the campaigns named, campaign → distinct users of the batch's EntrantRegistered events. */
export function usersOf(batch: readonly Logged[], campaigns: ReadonlySet<string>): Map<string, string[]> {
  const users = new Map<string, Set<string>>();
  for (const { event } of batch) {
    if (event.type !== 'EntrantRegistered' || !campaigns.has(event.campaignId)) continue;
    let set = users.get(event.campaignId);
    if (!set) users.set(event.campaignId, (set = new Set()));
    set.add(event.userId);
  }
  return new Map([...users].map(([c, s]) => [c, [...s]]));
}

const CANONICAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * A date of the log as toISOString writes it (UTC, milliseconds). Every firstcome process writes
 * that form, which is kept as it is: a Date and its toISOString per entry were a third of writing
 * an entry's row. Any other form the codec let through (another offset, no fraction) is rewritten,
 * so Postgres reads the instant JavaScript does.
 */
export function isoOf(date: string): string {
  return CANONICAL_ISO.test(date) ? date : new Date(date).toISOString();
}

/** A campaign as the plan goes through the batch, and its line as `decideEntry` views it (one object per campaign, not one per entry). */
class CampaignState {
  constructor(
    public terms: CampaignTerms,
    /** distinct users placed so far */
    public size: number,
    /** of them, those the batch names (`Known.placed`) and those it places */
    private readonly placed: Set<string>,
  ) {}

  has(userId: string): boolean {
    return this.placed.has(userId);
  }

  place(userId: string, position: number): void {
    this.placed.add(userId);
    this.size = position;
  }
}

export function planBatch(batch: readonly Logged[], known: Known): Plan {
  const plan: Plan = { heads: [], campaigns: [], entries: [], winners: [], gifticons: [], parkedIssuances: [], changes: new Map() };
  const state = new Map<string, CampaignState>();
  const stateOf = (id: string) => {
    let s = state.get(id);
    if (!s) {
      const k = known.campaigns.get(id);
      if (!k) return undefined;
      s = new CampaignState({ ...k.terms }, k.entrants, new Set(known.placed.get(id)));
      state.set(id, s);
    }
    return s;
  };
  const changeOf = (id: string) => {
    let c = plan.changes.get(id);
    if (!c) plan.changes.set(id, (c = { entrants: 0, firstEntryAt: null, closedAt: null, soldOutAt: null, challenge: null }));
    return c;
  };

  for (const { event: e, partition, offset } of batch) {
    switch (e.type) {
      case 'CampaignCreated': {
        // evolveTerms: a campaign is created once
        if (stateOf(e.campaignId)) break;
        const terms = evolveTerms(null, e)!;
        const challenge = evolveChallenge(null, e)!;
        state.set(e.campaignId, new CampaignState(terms, 0, new Set()));
        plan.campaigns.push({
          id: e.campaignId,
          title: e.title,
          reward: e.reward,
          stock: e.stock,
          opensAt: new Date(terms.opensAt),
          closesAt: new Date(terms.closesAt),
          createdAt: new Date(e.occurredAt),
          challengeMode: challenge.mode,
          challengeDifficulty: challenge.difficulty,
        });
        break;
      }
      case 'EntrantRegistered': {
        const s = stateOf(e.campaignId);
        // an entry naming no known campaign is skipped, as the decider skips it
        if (!s) break;
        const d = decideEntry(s, s.terms, e.userId, Date.parse(e.occurredAt));
        if (d.kind !== 'new') break;
        s.place(e.userId, d.position);
        plan.entries.push({
          campaignId: e.campaignId,
          userId: e.userId,
          ticket: ticketOf(partition, offset),
          position: d.position,
          status: outcomeOf(s.terms.stock, d.position),
          logOffset: offset,
          enteredAt: isoOf(e.occurredAt),
        });
        const c = changeOf(e.campaignId);
        c.entrants++;
        c.firstEntryAt ??= new Date(e.occurredAt);
        break;
      }
      case 'WinnerSelected':
        plan.winners.push({ campaignId: e.campaignId, userId: e.userId, position: e.position, wonAt: new Date(e.occurredAt) });
        break;
      case 'GifticonIssued':
        plan.gifticons.push({
          id: e.gifticonId,
          campaignId: e.campaignId,
          userId: e.userId,
          // sealed from issue 29 on (a version 1 event's plaintext as it was)
          code: storedCodeOf(e),
          issuedAt: new Date(e.occurredAt),
          expiresAt: 'expiresAt' in e && e.expiresAt ? new Date(e.expiresAt) : null,
          logOffset: offset,
        });
        break;
      case 'IssuanceParked':
        plan.parkedIssuances.push({ campaignId: e.campaignId, userId: e.userId, at: new Date(e.occurredAt) });
        break;
      case 'CampaignSoldOut': {
        if (!stateOf(e.campaignId)) break;
        changeOf(e.campaignId).soldOutAt ??= new Date(e.occurredAt);
        break;
      }
      case 'CampaignClosed': {
        const s = stateOf(e.campaignId);
        if (!s) break;
        const terms = evolveTerms(s.terms, e)!;
        if (terms === s.terms) break; // the first close wins
        s.terms = terms;
        changeOf(e.campaignId).closedAt = new Date(e.occurredAt);
        break;
      }
      case 'CampaignChallengeSet': {
        // evolveChallenge: the last setting in log order holds; one for a campaign not known changes nothing
        if (!stateOf(e.campaignId)) break;
        const c = changeOf(e.campaignId);
        c.challenge = evolveChallenge(c.challenge ?? CHALLENGE_OFF, e);
        break;
      }
      case 'LineHeadSigned':
        plan.heads.push({
          campaignId: e.campaignId,
          size: e.size,
          final: e.final,
          root: e.root,
          at: e.at,
          keyId: e.keyId,
          signature: e.signature,
          logOffset: offset,
        });
        break;
      case 'IssuanceRequested': // the issuer's to act on: the gifticon it leads to is a GifticonIssued of its own
      case 'CodesLoaded': // the loaded codes stay in the log (sealed) and in Redis; a winner's code reaches the tables with its GifticonIssued
        break;
      default: {
        const _exhaustive: never = e;
        return _exhaustive;
      }
    }
  }
  return plan;
}
