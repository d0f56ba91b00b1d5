import { mintGifticonCode, mintGifticonId } from './codes.js';
import { CHALLENGE_OFF, evolveChallenge } from './challenge.js';
import {
  EVENT_VERSION,
  SEALED_GIFTICON_VERSION,
  eventIds,
  ticketOf,
  type CampaignEvent,
  type CampaignSoldOut,
  type ChallengeSetting,
  type EntrantRegistered,
  type Issuance,
  type Logged,
  type SealedGifticonIssued,
  type WinnerSelected,
} from './events.js';

/**
 * The campaign decider, Emmett style: `initialState`, `evolve`, `decide`, no I/O.
 * Deciding is a pure function of the log (given the minted codes), so a replay decides the same way.
 */

export type Rejection = 'NOT_OPEN' | 'CLOSED' | 'SOLD_OUT';

/** What the campaign is, as far as deciding needs it. */
export interface CampaignTerms {
  stock: number;
  opensAt: number; // epoch ms
  closesAt: number; // epoch ms
  /** epoch ms of a CampaignClosed seen earlier in the log, if any */
  closedAt: number | null;
  /** how winners get their codes; absent: MINTED */
  issuance?: Issuance;
}

export interface Place {
  position: number;
  ticket: string;
}

export interface CampaignState {
  id: string | null;
  terms: CampaignTerms | null;
  places: Map<string, Place>;
  winners: number;
  issued: Set<string>;
  soldOut: boolean;
  /** the proof-of-work setting as it stands (an API gate: it decides nothing here) */
  challenge: ChallengeSetting;
}

export const initialState = (): CampaignState => ({
  id: null,
  terms: null,
  places: new Map(),
  winners: 0,
  issued: new Set(),
  soldOut: false,
  challenge: CHALLENGE_OFF,
});

/**
 * Whether an entry made at `at` (server clock at append) may take a place. `taken` is how many
 * places exist already; it only matters to the API's gate, since a late entry still gets a
 * (losing) place in the log.
 */
export function judgeEntry(terms: CampaignTerms, at: number): Rejection | null {
  if (terms.closedAt !== null && terms.closedAt <= at) return 'CLOSED';
  if (at >= terms.closesAt) return 'CLOSED';
  if (at < terms.opensAt) return 'NOT_OPEN';
  return null;
}

/**
 * The terms rule: a campaign is created once (a second CampaignCreated with the same id changes
 * nothing) and the first close wins (a later CampaignClosed changes nothing).
 */
export function evolveTerms(terms: CampaignTerms | null, event: CampaignEvent): CampaignTerms | null {
  switch (event.type) {
    case 'CampaignCreated':
      return (
        terms ?? {
          stock: event.stock,
          opensAt: Date.parse(event.opensAt),
          closesAt: Date.parse(event.closesAt),
          closedAt: null,
          ...(event.issuance && event.issuance !== 'MINTED' ? { issuance: event.issuance } : {}),
        }
      );
    case 'CampaignClosed':
      return terms && terms.closedAt === null ? { ...terms, closedAt: Date.parse(event.occurredAt) } : terms;
    default:
      return terms;
  }
}

/** The line at an entry's point of the log, as the place rule needs it: how many distinct users are in it, and whether one is. */
export interface LineView {
  size: number;
  has(userId: string): boolean;
}

export type EntryDecision =
  /** the user's first admitted entry: a new place, the rank among distinct users by first offset */
  | { kind: 'new'; position: number }
  /** the user is in line already and keeps that place, whenever this entry came (CONTRACT: calling again returns the same entry) */
  | { kind: 'repeat' }
  | { kind: 'rejected'; rejection: Rejection };

/**
 * The admission and place rule of an entry made at `at`, in log order: a user already in line
 * keeps their place; anyone else is judged by the terms as they stand at that point of the log,
 * and if admitted takes the next place. The pure decider, the Prisma plan and the in-memory lines
 * call this; place.lua does the same atomically in Redis (the writer passes it `judgeEntry`'s
 * verdict), and test/integration/ordering-lua.int.spec.ts holds the two together.
 */
export function decideEntry(line: LineView, terms: CampaignTerms, userId: string, at: number): EntryDecision {
  return placeInLine(line, userId, judgeEntry(terms, at));
}

/** `decideEntry` given the terms' verdict on the entry (what place.lua is given). */
export function placeInLine(line: LineView, userId: string, verdict: Rejection | null): EntryDecision {
  if (line.has(userId)) return { kind: 'repeat' };
  if (verdict) return { kind: 'rejected', rejection: verdict };
  return { kind: 'new', position: line.size + 1 };
}

/** The API's fast gate: judgeEntry plus "every unit already taken". */
export function admit(terms: CampaignTerms, at: number, taken: number): Rejection | null {
  return judgeEntry(terms, at) ?? (taken >= terms.stock ? 'SOLD_OUT' : null);
}

export type CampaignStatus = 'SCHEDULED' | 'OPEN' | 'SOLD_OUT' | 'CLOSED';

export function statusOf(terms: CampaignTerms, winners: number, now: number): CampaignStatus {
  if ((terms.closedAt !== null && terms.closedAt <= now) || now >= terms.closesAt) return 'CLOSED';
  if (winners >= terms.stock) return 'SOLD_OUT';
  if (now < terms.opensAt) return 'SCHEDULED';
  return 'OPEN';
}

/** When a campaign stopped taking entries (closed by an admin or the schedule, or past closesAt); null while it takes them. */
export function closedSince(terms: { closesAt: number; closedAt: number | null }, now: number): number | null {
  if (terms.closedAt !== null && terms.closedAt <= now) return terms.closedAt;
  return now >= terms.closesAt ? terms.closesAt : null;
}

/** Closed for `retentionMs` or longer: the Redis projection no longer needs it (the read model keeps it). */
export function pastRetention(terms: { closesAt: number; closedAt: number | null }, now: number, retentionMs: number): boolean {
  const since = closedSince(terms, now);
  return since !== null && now - since >= retentionMs;
}

export type EntryOutcome = 'WON' | 'LOST';
export const outcomeOf = (stock: number, position: number): EntryOutcome => (position <= stock ? 'WON' : 'LOST');

export interface Minter {
  code(): string;
  id(): string;
}
export const cryptoMinter: Minter = { code: mintGifticonCode, id: mintGifticonId };

/** Seals a code under its campaign's data key (src/domain/sealing.ts); what the writer is given holds the keys. */
export interface Sealer {
  seal(campaignId: string, code: string): string;
}

/** Whether a winner's gifticon is issued at the decision: only a MINTED campaign's; the others' wait PENDING. */
export const issuesAtDecision = (terms: { issuance?: Issuance }): boolean => (terms.issuance ?? 'MINTED') === 'MINTED';

/**
 * The events a newly placed entrant causes: nothing for a loser; WinnerSelected, and for a MINTED
 * campaign GifticonIssued with a new code sealed, for a winner; CampaignSoldOut with the last unit.
 * Shared by the pure decider and the Redis backed one, so both follow one rule.
 */
export function eventsForPlace(
  campaignId: string,
  terms: { stock: number; issuance?: Issuance },
  userId: string,
  place: Place,
  now: Date,
  mint: Minter,
  sealer: Sealer,
): CampaignEvent[] {
  const { stock } = terms;
  if (place.position > stock) return [];
  const occurredAt = now.toISOString();
  const base = { version: EVENT_VERSION, campaignId, occurredAt } as const;
  const winner: WinnerSelected = {
    ...base,
    type: 'WinnerSelected',
    eventId: eventIds.winner(campaignId, userId),
    userId,
    position: place.position,
    ticket: place.ticket,
  };
  const out: CampaignEvent[] = [winner];
  if (issuesAtDecision(terms)) {
    const gifticon: SealedGifticonIssued = {
      ...base,
      version: SEALED_GIFTICON_VERSION,
      type: 'GifticonIssued',
      eventId: eventIds.gifticon(campaignId, userId),
      userId,
      gifticonId: mint.id(),
      sealedCode: sealer.seal(campaignId, mint.code()),
      position: place.position,
    };
    out.push(gifticon);
  }
  if (place.position === stock) {
    const soldOut: CampaignSoldOut = {
      ...base,
      type: 'CampaignSoldOut',
      eventId: eventIds.soldOut(campaignId),
      winners: stock,
    };
    out.push(soldOut);
  }
  return out;
}

export type Decision =
  | { kind: 'placed'; userId: string; place: Place; outcome: EntryOutcome; firstTime: boolean }
  | { kind: 'rejected'; userId: string; rejection: Rejection };

/** How an entrant's registration at a point of the log is decided, without changing state. */
export function judge(state: CampaignState, logged: Logged<EntrantRegistered>): Decision {
  const { event } = logged;
  const terms = state.terms;
  if (!terms) return { kind: 'rejected', userId: event.userId, rejection: 'CLOSED' };
  const line = { size: state.places.size, has: (u: string) => state.places.has(u) };
  const d = decideEntry(line, terms, event.userId, Date.parse(event.occurredAt));
  switch (d.kind) {
    case 'repeat': {
      const place = state.places.get(event.userId)!;
      return { kind: 'placed', userId: event.userId, place, outcome: outcomeOf(terms.stock, place.position), firstTime: false };
    }
    case 'rejected':
      return { kind: 'rejected', userId: event.userId, rejection: d.rejection };
    case 'new': {
      const place = { position: d.position, ticket: ticketOf(logged.partition, logged.offset) };
      return { kind: 'placed', userId: event.userId, place, outcome: outcomeOf(terms.stock, place.position), firstTime: true };
    }
    default: {
      const _exhaustive: never = d;
      return _exhaustive;
    }
  }
}

/** decide: an entrant's registration → the events it causes. */
export function decide(state: CampaignState, logged: Logged, now: Date, mint: Minter, sealer: Sealer): CampaignEvent[] {
  if (logged.event.type !== 'EntrantRegistered' || !state.terms || !state.id) return [];
  const d = judge(state, logged as Logged<EntrantRegistered>);
  if (d.kind !== 'placed' || !d.firstTime) return [];
  return eventsForPlace(state.id, state.terms, d.userId, d.place, now, mint, sealer);
}

/** evolve: the state after one more event of the log. */
export function evolve(state: CampaignState, logged: Logged): CampaignState {
  const e = logged.event;
  switch (e.type) {
    case 'CampaignCreated':
      if (state.terms) return state; // evolveTerms: created once
      return { ...state, id: e.campaignId, terms: evolveTerms(null, e), challenge: evolveChallenge(null, e)! };
    case 'EntrantRegistered': {
      const d = judge(state, logged as Logged<EntrantRegistered>);
      if (d.kind !== 'placed' || !d.firstTime) return state;
      const places = new Map(state.places);
      places.set(d.userId, d.place);
      return { ...state, places };
    }
    case 'WinnerSelected':
      return { ...state, winners: state.winners + 1 };
    case 'GifticonIssued': {
      const issued = new Set(state.issued);
      issued.add(e.userId);
      return { ...state, issued };
    }
    case 'CampaignSoldOut':
      return { ...state, soldOut: true };
    case 'CampaignClosed': {
      const terms = evolveTerms(state.terms, e);
      return terms === state.terms ? state : { ...state, terms };
    }
    case 'CampaignChallengeSet':
      return state.terms ? { ...state, challenge: evolveChallenge(state.challenge, e)! } : state;
    case 'LineHeadSigned': // a proof about the line, not a fact that changes it
    case 'IssuanceRequested': // the issuer's to act on
    case 'IssuanceParked': // the winner's gifticon reads FAILED; the line is as it was
      return state;
    case 'CodesLoaded':
      // codes for the winners: the single writer assigns them (src/writer/inventory.ts)
      return state;
    default: {
      const _exhaustive: never = e;
      return _exhaustive;
    }
  }
}

/**
 * `evolve` for a fold that owns its state (`replay`, the audit): the line and the set of the issued
 * grow in place. `evolve` copies them, as a pure step must, and a whole log folded with it copied
 * the line once per entry: quadratic (the demo's audit of a 20,000-winner drop took 60 s of CPU).
 * The state passed in is changed: only for a state no one else holds.
 */
export function evolveOwned(state: CampaignState, logged: Logged): CampaignState {
  const e = logged.event;
  switch (e.type) {
    case 'EntrantRegistered': {
      const d = judge(state, logged as Logged<EntrantRegistered>);
      if (d.kind === 'placed' && d.firstTime) state.places.set(d.userId, d.place);
      return state;
    }
    case 'WinnerSelected':
      state.winners++;
      return state;
    case 'GifticonIssued':
      state.issued.add(e.userId);
      return state;
    default:
      // created, sold out, closed: shallow copies that keep the line and the set
      return evolve(state, logged);
  }
}

/** Folds a whole log (one campaign's events in order) into state, deciding as it goes. */
export function replay(log: Logged[]): CampaignState {
  return log.reduce(evolveOwned, initialState());
}
