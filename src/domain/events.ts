/**
 * The facts of a campaign, as they stand in the log. Every event carries the same envelope; event
 * ids are deterministic where a replay or a retry must not double a fact.
 */
export const EVENT_VERSION = 1 as const;
/**
 * GifticonIssued's version from issue 29 on: the code sealed (`sealedCode`), never in plaintext.
 * Version 1 events (a plaintext `code`) written before stay readable; nothing writes them again.
 */
export const SEALED_GIFTICON_VERSION = 2 as const;

interface Envelope<T extends string, V extends number = typeof EVENT_VERSION> {
  type: T;
  version: V;
  eventId: string;
  campaignId: string;
  /** ISO-8601, the server clock of the process that appended it */
  occurredAt: string;
}

/** A campaign's proof-of-work setting (src/domain/challenge.ts has its rules). */
export type ChallengeMode = 'OFF' | 'POW';
export interface ChallengeSetting {
  mode: ChallengeMode;
  /** ALTCHA's maxnumber; null when OFF */
  difficulty: number | null;
}

export interface CampaignCreated extends Envelope<'CampaignCreated'> {
  title: string;
  reward: string;
  stock: number;
  opensAt: string;
  closesAt: string;
  /** the proof-of-work setting it opens with; left out: OFF (every campaign created before issue 34) */
  challenge?: ChallengeSetting;
  /** how its winners get their codes; left out: MINTED (every campaign created before issue 29) */
  issuance?: Issuance;
  /** the provider's product reference (PROVIDER) */
  product?: string;
}

/**
 * How a campaign's winners get their codes: MINTED, firstcome mints one at the decision;
 * INVENTORY, the k-th winner takes the k-th code the brand loaded; PROVIDER, the `issuer` role asks
 * the provider's API for one. Only MINTED issues at the decision: the others' winners wait PENDING.
 */
export type Issuance = 'MINTED' | 'INVENTORY' | 'PROVIDER';
export const ISSUANCES: readonly Issuance[] = ['MINTED', 'INVENTORY', 'PROVIDER'];

/** An admin switched the campaign's proof-of-work on or off, or changed its difficulty. */
export interface CampaignChallengeSet extends Envelope<'CampaignChallengeSet'>, ChallengeSetting {}

export interface EntrantRegistered extends Envelope<'EntrantRegistered'> {
  userId: string;
  /** API process and request that wait for the decision (not part of the decision) */
  replyTo?: { instance: string; request: string };
}

export interface WinnerSelected extends Envelope<'WinnerSelected'> {
  userId: string;
  position: number;
  ticket: string;
}

interface GifticonFacts {
  userId: string;
  gifticonId: string;
  position: number;
}

/** A gifticon as written before issue 29: its code in plaintext. Read, never written. */
export interface PlainGifticonIssued extends Envelope<'GifticonIssued'>, GifticonFacts {
  code: string;
}

/**
 * A gifticon from issue 29 on: its code sealed under the campaign's data key (`SealedCode`:
 * the key's id and the AES-256-GCM ciphertext, see src/domain/sealing.ts).
 */
export interface SealedGifticonIssued extends Envelope<'GifticonIssued', typeof SEALED_GIFTICON_VERSION>, GifticonFacts {
  sealedCode: string;
  /** a PROVIDER campaign's: the provider's own id of the voucher */
  voucherId?: string;
  /** a PROVIDER campaign's: when the provider's voucher expires (ISO-8601) */
  expiresAt?: string;
}

export type GifticonIssued = PlainGifticonIssued | SealedGifticonIssued;

/** What the stores keep of a gifticon's code: the sealed string, or a version 1 event's plaintext (see `isSealed`). */
export const storedCodeOf = (e: GifticonIssued): string => ('sealedCode' in e ? e.sealedCode : e.code);

/**
 * A request to drive a PROVIDER winner's issuance again (`retryParked` of a parked issuance, the
 * `issue` job): the issuer calls the provider for the winner with the same idempotency key, unless
 * the winner already holds a gifticon. It never carries a gifticon itself.
 */
export interface IssuanceRequested extends Envelope<'IssuanceRequested'> {
  userId: string;
  position: number;
  /** the winner's WinnerSelected, whose id the idempotency key is made from */
  winnerEventId: string;
  /** who asked: `retry:<parked id>` or `job:<job id>` */
  by: string;
}

/**
 * A PROVIDER winner's issuance parked by the issuer (the provider refused it for good, or its
 * attempts or time ran out), appended in the transaction that moves the issuer past the request,
 * beside the parked record of the dead-letter topic (`parkedId`). It makes the winner's `FAILED` a
 * fact of the log, so every projection and every replay gives it back; a GifticonIssued of the
 * winner (a retry that succeeded) supersedes it whatever their order. No code, no provider answer.
 */
export interface IssuanceParked extends Envelope<'IssuanceParked'> {
  userId: string;
  position: number;
  /** the record's id in the dead-letter topic and the `parked` view */
  parkedId: string;
}

export interface CampaignSoldOut extends Envelope<'CampaignSoldOut'> {
  winners: number;
}

export interface CampaignClosed extends Envelope<'CampaignClosed'> {
  reason: 'admin' | 'schedule';
}

/**
 * The single writer signed a head of the campaign's line (issue 31): the RFC 9162 root of its first
 * `size` leaves, at `at` (a time taken from the log). `final`: the head signed at close.
 */
export interface LineHeadSigned extends Envelope<'LineHeadSigned'> {
  size: number;
  root: string;
  at: string;
  keyId: string;
  signature: string;
  final: boolean;
}

/**
 * An admin loaded a chunk of an INVENTORY campaign's codes (`loadCodes`): each code sealed under
 * the campaign's data key, in the order given, with its keyed hash (hex HMAC-SHA256 under the data
 * key, src/domain/inventory.ts) so duplicates are found without opening a code. Never a plaintext
 * code. The event id names the chunk: a chunk loaded twice counts once. Which codes are new is a
 * pure function of the log (the first load of a hash in log order keeps it), and the k-th code kept
 * goes to the k-th winner by position.
 */
export interface CodesLoaded extends Envelope<'CodesLoaded'> {
  chunkId: string;
  codes: { sealed: string; hash: string }[];
}

export type CampaignEvent =
  | CampaignCreated
  | CodesLoaded
  | EntrantRegistered
  | WinnerSelected
  | GifticonIssued
  | CampaignSoldOut
  | CampaignClosed
  | CampaignChallengeSet
  | LineHeadSigned
  | IssuanceRequested
  | IssuanceParked;

export type CampaignEventType = CampaignEvent['type'];

/** An event together with its place in the log. */
export interface Logged<E extends CampaignEvent = CampaignEvent> {
  event: E;
  partition: number;
  offset: bigint;
}

/** A ticket names an entry's place in the log: `<partition>-<offset>`. */
export function ticketOf(partition: number, offset: bigint): string {
  return `${partition}-${offset}`;
}

export function parseTicket(ticket: string): { partition: number; offset: bigint } | null {
  const m = /^(\d+)-(\d+)$/.exec(ticket);
  return m ? { partition: Number(m[1]), offset: BigInt(m[2]!) } : null;
}

export const eventIds = {
  created: (campaignId: string) => `created:${campaignId}`,
  winner: (campaignId: string, userId: string) => `winner:${campaignId}:${userId}`,
  gifticon: (campaignId: string, userId: string) => `gifticon:${campaignId}:${userId}`,
  soldOut: (campaignId: string) => `soldout:${campaignId}`,
  closed: (campaignId: string) => `closed:${campaignId}`,
  /** one event per chunk of codes loaded: a chunk loaded twice counts once */
  codes: (campaignId: string, chunkId: string) => `codes:${campaignId}:${chunkId}`,
  /** one head per size, and one final head */
  head: (campaignId: string, size: number, final: boolean) => (final ? `head:${campaignId}:final` : `head:${campaignId}:${size}`),
};

const TYPES: ReadonlySet<string> = new Set<CampaignEventType>([
  'CampaignCreated',
  'EntrantRegistered',
  'WinnerSelected',
  'GifticonIssued',
  'CampaignSoldOut',
  'CampaignClosed',
  'CampaignChallengeSet',
  'LineHeadSigned',
  'IssuanceRequested',
  'IssuanceParked',
  'CodesLoaded',
]);

export function isCampaignEvent(value: unknown): value is CampaignEvent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.type === 'string' &&
    TYPES.has(v.type) &&
    typeof v.eventId === 'string' &&
    typeof v.campaignId === 'string' &&
    typeof v.occurredAt === 'string'
  );
}

/** A re-drive of a winner's issuance; its id names the request, so asking twice for the same reason appends one. */
export function issuanceRequested(
  winner: { campaignId: string; userId: string; position: number },
  by: string,
  at: Date = new Date(),
): IssuanceRequested {
  return {
    type: 'IssuanceRequested',
    version: EVENT_VERSION,
    eventId: `issue:${winner.campaignId}:${winner.userId}:${by}`,
    campaignId: winner.campaignId,
    occurredAt: at.toISOString(),
    userId: winner.userId,
    position: winner.position,
    winnerEventId: eventIds.winner(winner.campaignId, winner.userId),
    by,
  };
}

/**
 * A winner's issuance parked; its id names the record that asked for the call (the WinnerSelected
 * or IssuanceRequested at `requestOffset`), so a chunk the issuer runs again after a crash appends the same one.
 */
export function issuanceParked(
  winner: { campaignId: string; userId: string; position: number },
  parkedId: string,
  requestOffset: string,
  at: Date = new Date(),
): IssuanceParked {
  return {
    type: 'IssuanceParked',
    version: EVENT_VERSION,
    eventId: `parked:${winner.campaignId}:${winner.userId}:${requestOffset}`,
    campaignId: winner.campaignId,
    occurredAt: at.toISOString(),
    userId: winner.userId,
    position: winner.position,
    parkedId,
  };
}

/** A user's entry as the API appends it: its id names the request, which `replyTo` waits on. */
export function entrantRegistered(
  campaignId: string,
  userId: string,
  at: Date,
  replyTo: { instance: string; request: string },
): EntrantRegistered {
  return {
    type: 'EntrantRegistered',
    version: EVENT_VERSION,
    eventId: `entrant:${campaignId}:${userId}:${replyTo.request}`,
    campaignId,
    occurredAt: at.toISOString(),
    userId,
    replyTo,
  };
}

/** The one way to say a campaign closed, by an admin or on schedule. */
export function campaignClosed(campaignId: string, reason: CampaignClosed['reason'], at: Date = new Date()): CampaignClosed {
  return {
    type: 'CampaignClosed',
    version: EVENT_VERSION,
    eventId: eventIds.closed(campaignId),
    campaignId,
    occurredAt: at.toISOString(),
    reason,
  };
}

/** A change of the proof-of-work setting: its id names the request, since a campaign may change it any number of times. */
export function campaignChallengeSet(
  campaignId: string,
  setting: ChallengeSetting,
  request: string,
  at: Date = new Date(),
): CampaignChallengeSet {
  return {
    type: 'CampaignChallengeSet',
    version: EVENT_VERSION,
    eventId: `challenge:${campaignId}:${request}`,
    campaignId,
    occurredAt: at.toISOString(),
    mode: setting.mode,
    difficulty: setting.difficulty,
  };
}
