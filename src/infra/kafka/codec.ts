import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { z } from 'zod';
import { EVENT_VERSION, ISSUANCES, SEALED_GIFTICON_VERSION, type CampaignEvent, type Logged } from '../../domain/events.js';
import { CHUNK_ID, MAX_CODES_PER_CHUNK } from '../../domain/inventory.js';
import { isSealed } from '../../domain/sealing.js';
import { partitionFor } from './partitioning.js';

/**
 * The one place events become Kafka messages and Kafka records become events.
 *
 * Anyone with write access to the topic can put anything on it: a half-written tool, a
 * misconfigured service, a newer firstcome during an upgrade. So every record read is classified
 * before a consumer acts on it, and each consumer decides from the class alone:
 * - `event`: an event of a version this build knows, checked field by field;
 * - `newer`: an event of the next version, written by an upgraded firstcome: misread as an older
 *   one it would be applied wrongly, so the consumer stops at it (see `NewerEventError`);
 * - `foreign`: not an event of this log at all. It is parked, never fatal.
 * - `genesis`: the record firstcome writes at offset 0 of every partition when it creates the topic
 *   (the log's own id, see logIdentity.ts). It holds no event: readers move past it.
 */
export type Decoded =
  | { kind: 'event'; logged: Logged }
  | { kind: 'genesis'; logId: string; partition: number; offset: bigint }
  | { kind: 'newer'; version: number; type: string; partition: number; offset: bigint }
  | { kind: 'foreign'; error: string; partition: number; offset: bigint };

// four-digit years: the servers' clocks write them, and the tables hold them
const isIso = (s: string) => /^\d{4}-\d{2}-\d{2}T/.test(s) && !Number.isNaN(Date.parse(s));
const USER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const CAMPAIGN_ID = /^[a-z0-9-]{1,64}$/;
const TICKET = /^\d+-\d+$/;
const EVENT_ID_MAX = 300;
const iso = z.string().refine(isIso, 'not an ISO-8601 date');
const userId = z.string().regex(USER_ID, 'not a user id');
const envelope = {
  version: z.literal(EVENT_VERSION),
  eventId: z.string().min(1).max(EVENT_ID_MAX),
  campaignId: z.string().regex(CAMPAIGN_ID, 'not a campaign id'),
  occurredAt: iso,
};
const position = z.number().int().min(1);
const challenge = {
  mode: z.enum(['OFF', 'POW']),
  difficulty: z.number().int().min(1).nullable(),
};
/** The envelope a later version keeps: what tells a record of this log from anything else. */
const envelopeSchema = z.object({
  type: z.string().regex(/^[A-Z][A-Za-z]{1,63}$/),
  eventId: envelope.eventId,
  campaignId: envelope.campaignId,
  occurredAt: envelope.occurredAt,
});

/** Every event of this version, field by field. */
export const eventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('CampaignCreated'),
    ...envelope,
    title: z.string(),
    reward: z.string(),
    stock: z.number().int().min(1).max(10_000_000),
    opensAt: iso,
    closesAt: iso,
    challenge: z.object(challenge).optional(),
    issuance: z.enum(ISSUANCES as [string, ...string[]]).optional(),
    product: z.string().min(1).max(200).optional(),
  }),
  z.object({
    type: z.literal('EntrantRegistered'),
    ...envelope,
    userId,
    replyTo: z.object({ instance: z.string(), request: z.string() }).optional(),
  }),
  z.object({ type: z.literal('WinnerSelected'), ...envelope, userId, position, ticket: z.string().regex(TICKET) }),
  z
    .object({
      type: z.literal('GifticonIssued'),
      ...envelope,
      // version 1: the code in plaintext (before issue 29); version 2: sealed, and no plaintext beside it
      version: z.union([z.literal(EVENT_VERSION), z.literal(SEALED_GIFTICON_VERSION)]),
      userId,
      gifticonId: z.string().min(1),
      code: z.string().min(1).optional(),
      sealedCode: z.string().refine(isSealed, 'not a sealed code').optional(),
      voucherId: z.string().min(1).max(200).optional(),
      expiresAt: iso.optional(),
      position,
    })
    .refine(
      (e) =>
        e.version === EVENT_VERSION
          ? e.code !== undefined && e.sealedCode === undefined
          : e.sealedCode !== undefined && e.code === undefined,
      {
        message: 'version 1 carries `code`, version 2 `sealedCode` and nothing in plaintext',
      },
    ),
  z.object({ type: z.literal('CampaignSoldOut'), ...envelope, winners: z.number().int().min(0) }),
  z.object({ type: z.literal('CampaignClosed'), ...envelope, reason: z.enum(['admin', 'schedule']) }),
  z.object({ type: z.literal('CampaignChallengeSet'), ...envelope, ...challenge }),
  z.object({
    type: z.literal('LineHeadSigned'),
    ...envelope,
    size: z.number().int().min(0),
    root: z.string().regex(/^[0-9a-f]{64}$/),
    at: iso,
    keyId: z.string().min(1),
    signature: z.string().min(1),
    final: z.boolean(),
  }),
  z.object({
    type: z.literal('IssuanceRequested'),
    ...envelope,
    userId,
    position,
    winnerEventId: z.string().min(1).max(300),
    by: z.string().min(1).max(300),
  }),
  z.object({ type: z.literal('IssuanceParked'), ...envelope, userId, position, parkedId: z.string().min(1).max(300) }),
  z.object({
    type: z.literal('CodesLoaded'),
    ...envelope,
    chunkId: z.string().regex(CHUNK_ID),
    // sealed, never in plaintext: a record with a plaintext code is refused (parked)
    codes: z
      .array(z.object({ sealed: z.string().refine(isSealed, 'not a sealed code'), hash: z.string().regex(/^[0-9a-f]{64}$/) }).strict())
      .min(1)
      .max(MAX_CODES_PER_CHUNK),
  }),
]);

/**
 * `eventSchema`'s rules for the events nearly every record holds, checked by hand (a test holds
 * each check and the schema together): an EntrantRegistered, and a winner's WinnerSelected and
 * GifticonIssued, the events of a packed decision record. zod's check copies the object, and was a
 * third of a record's decoding (~1.2 of ~3.6 µs for an entry). What these do not accept goes
 * through the schema, which accepts it or says why not.
 */
export function isEntrantRegistered(j: Record<string, unknown>): boolean {
  if (j.type !== 'EntrantRegistered' || !hasEnvelope(j) || !isUserId(j.userId)) return false;
  const { replyTo } = j;
  if (replyTo === undefined) return true;
  if (typeof replyTo !== 'object' || replyTo === null || Array.isArray(replyTo)) return false;
  const r = replyTo as Record<string, unknown>;
  return typeof r.instance === 'string' && typeof r.request === 'string';
}

/** A winner's WinnerSelected, checked by hand as `isEntrantRegistered` is. */
export function isWinnerSelected(j: Record<string, unknown>): boolean {
  return (
    j.type === 'WinnerSelected' &&
    hasEnvelope(j) &&
    isUserId(j.userId) &&
    isPosition(j.position) &&
    typeof j.ticket === 'string' &&
    TICKET.test(j.ticket)
  );
}

/** A winner's GifticonIssued, checked by hand as `isEntrantRegistered` is: version 2 sealed, version 1 in plaintext. */
export function isGifticonIssued(j: Record<string, unknown>): boolean {
  const { gifticonId, code, sealedCode } = j;
  const sealed = j.version === SEALED_GIFTICON_VERSION;
  return (
    j.type === 'GifticonIssued' &&
    hasEnvelope(j, sealed ? SEALED_GIFTICON_VERSION : EVENT_VERSION) &&
    isUserId(j.userId) &&
    isPosition(j.position) &&
    typeof gifticonId === 'string' &&
    gifticonId.length >= 1 &&
    (j.voucherId === undefined || (typeof j.voucherId === 'string' && j.voucherId.length >= 1 && j.voucherId.length <= 200)) &&
    (j.expiresAt === undefined || (typeof j.expiresAt === 'string' && isIso(j.expiresAt))) &&
    (sealed
      ? code === undefined && typeof sealedCode === 'string' && isSealed(sealedCode)
      : typeof code === 'string' && code.length >= 1 && sealedCode === undefined)
  );
}

const isUserId = (v: unknown) => typeof v === 'string' && USER_ID.test(v);
// zod 4's int() takes safe integers only
const isPosition = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 1;

function hasEnvelope(j: Record<string, unknown>, version: number = EVENT_VERSION): boolean {
  const { eventId, campaignId, occurredAt } = j;
  if (j.version !== version) return false;
  if (typeof eventId !== 'string' || eventId.length < 1 || eventId.length > EVENT_ID_MAX) return false;
  return typeof campaignId === 'string' && CAMPAIGN_ID.test(campaignId) && typeof occurredAt === 'string' && isIso(occurredAt);
}

/** The hand checks, by type (a Map: a record's `type` may be any string, `constructor` too). */
const handChecked = new Map<string, (j: Record<string, unknown>) => boolean>([
  ['EntrantRegistered', isEntrantRegistered],
  ['WinnerSelected', isWinnerSelected],
  ['GifticonIssued', isGifticonIssued],
]);

/**
 * One event as one record, keyed by its campaign. Its headers hold only what a reader uses before
 * parsing the value: `eventId`, by which the single writer skips the decisions it has applied
 * (`eventIdsOf`). An entrant's record has none: nothing skips an entry unread, and KafkaJS decodes
 * headers dearly (each a string and a Buffer, gathered by object spreads): the two an entry carried
 * (`type` and `eventId`) were 60% of KafkaJS's decoding of its record (3.35 against 1.33 µs with
 * snappy, `npm run bench:codecs`), paid by every reader of the log, replays included, on the records
 * that are most of every drop. Records written with headers before read as they always did.
 */
export function toMessage(event: CampaignEvent, partitions: number): Message & { partition: number } {
  const message = { key: event.campaignId, partition: partitionFor(event.campaignId, partitions), value: JSON.stringify(event) };
  return event.type === 'EntrantRegistered' ? message : { ...message, headers: { eventId: event.eventId } };
}

/**
 * The single writer's decisions of one commit as records: one per decision, its value a JSON array
 * of the decision's events in log order (a winner's WinnerSelected and GifticonIssued, and the
 * CampaignSoldOut that the last winner brings), instead of one record per event. A winner was two
 * records, two thirds of the log, and each record costs its encoding, the broker, and a fetch and
 * decode in every consumer group. Readers still see single events (`decodeRecord`), each with its
 * own id and the offset of its record. An event outside a decision stays a plain record.
 *
 * One record per decision, not one per campaign per commit: each gifticon keeps an offset of its
 * own, which the read model's gifticon pages are keyed by (`gifticons(after:)`); a record per commit
 * measured no cheaper on the server either (`npm run bench`). Header `eventId` lists the ids,
 * space-separated (ids hold no spaces).
 */
export function toPackedMessages(events: readonly CampaignEvent[], partitions: number): (Message & { partition: number })[] {
  const groups: CampaignEvent[][] = [];
  for (const e of events) {
    const open = groups.at(-1);
    if (e.type !== 'WinnerSelected' && open && open[0]!.type === 'WinnerSelected' && open[0]!.campaignId === e.campaignId) open.push(e);
    else groups.push([e]);
  }
  return groups.map((group) => {
    if (group.length === 1) return toMessage(group[0]!, partitions);
    const campaignId = group[0]!.campaignId;
    return {
      key: campaignId,
      partition: partitionFor(campaignId, partitions),
      value: JSON.stringify(group),
      headers: { eventId: group.map((e) => e.eventId).join(' ') },
    };
  });
}

/** What a genesis record holds: the log's id, and what it was created as (for people reading the topic). */
export interface Genesis {
  firstcome: 'genesis';
  logId: string;
  topic: string;
  partitions: number;
  createdAt: string;
}

/** The genesis record of one partition (written once, by whoever created the topic). */
export function toGenesisMessage(genesis: Omit<Genesis, 'firstcome'>, partition: number): Message & { partition: number } {
  return { partition, key: null, value: JSON.stringify({ firstcome: 'genesis', ...genesis } satisfies Genesis) };
}

function genesisOf(j: Record<string, unknown>): string | null {
  return j.firstcome === 'genesis' && typeof j.logId === 'string' && j.logId.length > 0 ? j.logId : null;
}

/** A header `toMessage` wrote, as a string (the writer skips an event by its `eventId` before decoding it). */
export function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? String(v[0]) : String(v);
}

/**
 * A record that names no event id: this build's entrant (`toMessage` gives an entry no headers), a
 * log's genesis, or a record of another log. A reader that needs no entries skips these unread; the
 * roles that read entries park what is not an event.
 */
export function namesNoEvent(m: { headers?: IHeaders }): boolean {
  return headerString(m.headers, 'eventId') === undefined;
}

/** The ids of the events a record carries, from its `eventId` header (one, or a packed record's list). */
export function eventIdsOf(headers: IHeaders | undefined): string[] {
  const v = headerString(headers, 'eventId');
  return v === undefined ? [] : v.split(' ');
}

/** Classifies the value of a record that holds one event (see `Decoded`). Never throws. */
export function decodeValue(value: Buffer | null, partition: number, offset: bigint): Decoded {
  const parsed = parseValue(value, partition, offset);
  return 'kind' in parsed ? parsed : classify(parsed.json, partition, offset);
}

/**
 * Classifies a record: one event, or the events of a packed record (`toPackedMessages`), each
 * with the record's offset. A packed record is one unit: when any of its events is foreign the
 * record is (parked whole), and when any is newer the record stops its consumer, so no reader ever
 * holds part of one. Never throws.
 */
export function decodeRecord(value: Buffer | null, partition: number, offset: bigint): Decoded[] {
  const parsed = parseValue(value, partition, offset);
  if ('kind' in parsed) return [parsed];
  if (!Array.isArray(parsed.json)) return [classify(parsed.json, partition, offset)];
  if (parsed.json.length === 0) return [{ kind: 'foreign', error: 'an empty packed record', partition, offset }];
  const each = parsed.json.map((j) => classify(j, partition, offset));
  const bad = each.findIndex((d) => d.kind === 'foreign');
  if (bad >= 0)
    return [
      {
        ...(each[bad] as Extract<Decoded, { kind: 'foreign' }>),
        error: `packed record, event ${bad + 1}: ${(each[bad] as Extract<Decoded, { kind: 'foreign' }>).error}`,
      },
    ];
  const newer = each.find((d) => d.kind === 'newer');
  return newer ? [newer] : each;
}

/** Events whose latest version is past EVENT_VERSION: GifticonIssued is sealed from version 2 on. */
const LATEST_VERSION = new Map<string, number>([['GifticonIssued', SEALED_GIFTICON_VERSION]]);

// module functions, not closures made per record: tsx names every closure as it is made, a call each time
const foreign = (error: string, partition: number, offset: bigint): Decoded => ({ kind: 'foreign', error, partition, offset });

function parseValue(value: Buffer | null, partition: number, offset: bigint): { json: unknown } | Decoded {
  if (value === null || value.length === 0) return foreign('empty record', partition, offset);
  try {
    return { json: JSON.parse(value.toString('utf8')) };
  } catch (err) {
    return foreign(`not JSON: ${(err as Error).message}`, partition, offset);
  }
}

function classify(parsed: unknown, partition: number, offset: bigint): Decoded {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return foreign('not a JSON object', partition, offset);
  const { type, version } = parsed as Record<string, unknown>;
  if (typeof type !== 'string') {
    const logId = genesisOf(parsed as Record<string, unknown>);
    return logId === null ? foreign('no event type', partition, offset) : { kind: 'genesis', logId, partition, offset };
  }
  if (handChecked.get(type)?.(parsed as Record<string, unknown>))
    return { kind: 'event', logged: { event: parsed as CampaignEvent, partition, offset } };
  const known = LATEST_VERSION.get(type) ?? EVENT_VERSION;
  if (typeof version === 'number' && version > known) {
    // An upgrade goes one event version at a time (readers first), so the only later version a
    // running build can meet from another firstcome is the next one, in this log's envelope: that
    // is never guessed at. Anything claiming to be further ahead is not from an upgrade; stopping
    // for it would let any writer halt every drop, so it is parked like other foreign records.
    if (version === known + 1 && envelopeSchema.safeParse(parsed).success) return { kind: 'newer', version, type, partition, offset };
    return foreign(`version ${version} is not one this build or the next one writes (this build knows ${known})`, partition, offset);
  }
  const checked = eventSchema.safeParse(parsed);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
    return foreign(`not an event of this log (${type}): ${where}${issue.message}`, partition, offset);
  }
  // the original object, not the checked copy: fields added within a version pass through
  return { kind: 'event', logged: { event: parsed as CampaignEvent, partition, offset } };
}

/** A record that holds one event; consumers of the events topic read with `decodeMessage`. */
export function decode(message: KafkaMessage, partition: number): Decoded {
  return decodeValue(message.value, partition, BigInt(message.offset));
}

/** Every event a record of the events topic holds (see `decodeRecord`); `offset`: the record's, when the caller has it already. */
export function decodeMessage(message: KafkaMessage, partition: number, offset = BigInt(message.offset)): Decoded[] {
  return decodeRecord(message.value, partition, offset);
}

/**
 * A consumer met an event of a version this build does not know. It stops at that record (the
 * partition is paused there) instead of misreading it; an upgraded build reads it.
 */
export class NewerEventError extends Error {
  constructor(
    readonly consumer: string,
    readonly record: Extract<Decoded, { kind: 'newer' }>,
  ) {
    super(
      `${consumer} stopped at partition ${record.partition} offset ${record.offset}: ` +
        `${record.type} of version ${record.version}, this build knows version ${LATEST_VERSION.get(record.type) ?? EVENT_VERSION}; ` +
        'run a firstcome build that knows it',
    );
    this.name = 'NewerEventError';
  }
}
