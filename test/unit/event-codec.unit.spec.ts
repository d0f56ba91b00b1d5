import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { entrantRegistered, EVENT_VERSION, issuanceParked, SEALED_GIFTICON_VERSION } from '../../src/domain/events.js';
import {
  decodeRecord,
  decodeValue,
  eventIdsOf,
  eventSchema,
  isEntrantRegistered,
  isGifticonIssued,
  isWinnerSelected,
  namesNoEvent,
  toMessage,
  toPackedMessages,
} from '../../src/infra/kafka/codec.js';
import { sortBatch } from '../../src/infra/kafka/parking.js';

const entrant = (userId = 'alice') => ({
  type: 'EntrantRegistered',
  version: EVENT_VERSION,
  eventId: `entrant:drop:${userId}:1`,
  campaignId: 'drop',
  occurredAt: '2026-11-29T12:00:00.000Z',
  userId,
});
const value = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const decode = (v: unknown) => decodeValue(value(v), 1, 42n);
const message = (offset: number, v: unknown): KafkaMessage =>
  ({ offset: String(offset), key: Buffer.from('drop'), value: value(v), headers: {}, timestamp: '0', attributes: 0 }) as KafkaMessage;

describe('the codec classifies every record read from the log', () => {
  it('an event of this version, field by field, is an event', () => {
    const d = decode(entrant());
    expect(d.kind).toBe('event');
    if (d.kind === 'event') expect(d.logged).toMatchObject({ partition: 1, offset: 42n, event: { userId: 'alice' } });
  });

  it('round-trips what toMessage writes', () => {
    const m = toMessage(entrant() as never, 6);
    expect(decodeValue(Buffer.from(m.value as string), m.partition, 0n).kind).toBe('event');
  });

  it("writes an entrant's record without headers, and any other with its eventId alone (what the writer skips by)", () => {
    expect(toMessage(entrant() as never, 6).headers).toBeUndefined();
    const closed = {
      type: 'CampaignClosed',
      version: EVENT_VERSION,
      eventId: 'closed:d',
      campaignId: 'd',
      occurredAt: '2026-11-29T12:00:00Z',
      reason: 'admin',
    };
    const m = toMessage(closed as never, 6);
    expect(m.headers).toEqual({ eventId: 'closed:d' });
    expect(eventIdsOf(m.headers)).toEqual(['closed:d']);
    expect(decodeValue(Buffer.from(m.value as string), m.partition, 0n).kind).toBe('event');
  });

  it('lets a reader that needs no entries skip them unread: the issuer gets the decisions and moves past every record', () => {
    const closed = {
      type: 'CampaignClosed',
      version: EVENT_VERSION,
      eventId: 'closed:drop',
      campaignId: 'drop',
      occurredAt: entrant().occurredAt,
      reason: 'admin',
    };
    const records = [toMessage(entrant('a') as never, 1), toMessage(closed as never, 1), toMessage(entrant('b') as never, 1)];
    const messages = records.map((r, i) => ({ ...message(i, r.value), headers: r.headers ?? {} }) as KafkaMessage);
    expect(messages.map(namesNoEvent)).toEqual([true, false, true]);
    // a record of another log names no event either: the roles that read entries park it
    expect(namesNoEvent(message(3, { hello: 'world' }))).toBe(true);
    const sorted = sortBatch('issuer', 't', 1, [...messages, message(3, { hello: 'world' })], { skip: namesNoEvent });
    expect(sorted.logged.map((l) => l.event.type)).toEqual(['CampaignClosed']);
    expect(sorted.parked).toEqual([]);
    expect(sorted.last).toBe(3n);
  });

  it.each([
    ['a truncated JSON', '{"type":"EntrantRegistered","vers', /not JSON/],
    ['an object of another kind', { hello: 'world' }, /no event type/],
    ['an array', [1, 2], /not a JSON object/],
    ['an unknown type', { ...entrant(), type: 'Hello' }, /not an event of this log/],
    ['a user id the API never accepts', { ...entrant(), userId: 'a b' }, /userId/],
    ['a campaign id of another shape', { ...entrant(), campaignId: 'Drop!' }, /campaignId/],
    [
      'a stock out of range',
      {
        type: 'CampaignCreated',
        version: 1,
        eventId: 'c',
        campaignId: 'd',
        occurredAt: '2026-11-29T12:00:00Z',
        title: 't',
        reward: 'r',
        stock: 0,
        opensAt: '2026-11-29T12:00:00Z',
        closesAt: '2026-11-29T13:00:00Z',
      },
      /stock/,
    ],
    ['a date that is not one', { ...entrant(), occurredAt: 'yesterday' }, /occurredAt/],
    ['version 99 (no upgrade writes it)', { ...entrant(), version: 99 }, /version 99/],
    ['the next version without the envelope of this log', { type: 'EntrantRegistered', version: EVENT_VERSION + 1 }, /version 2/],
  ])('%s is foreign, with the reason', (_, v, reason) => {
    const d = decode(v);
    expect(d.kind).toBe('foreign');
    if (d.kind === 'foreign') expect(d.error).toMatch(reason);
  });

  it('an empty record is foreign', () => {
    expect(decodeValue(null, 0, 0n)).toMatchObject({ kind: 'foreign', error: 'empty record' });
  });

  it('the next version in the envelope of this log is newer, whatever its type', () => {
    expect(decode({ ...entrant(), version: EVENT_VERSION + 1 })).toMatchObject({
      kind: 'newer',
      version: 2,
      type: 'EntrantRegistered',
      offset: 42n,
    });
    expect(decode({ ...entrant(), type: 'EntrantUpgraded', version: EVENT_VERSION + 1 }).kind).toBe('newer');
  });
});

describe('a fetched batch, sorted', () => {
  it('keeps events, parks foreign records, and stops at the first newer event', () => {
    const sorted = sortBatch('writer', 'events', 1, [
      message(10, entrant('a')),
      message(11, '{"trunc'),
      message(12, entrant('b')),
      message(13, { ...entrant('c'), version: EVENT_VERSION + 1 }),
      message(14, entrant('d')),
    ]);
    expect(sorted.logged.map((l) => l.offset)).toEqual([10n, 12n]);
    expect(sorted.parked).toHaveLength(1);
    expect(sorted.parked[0]).toMatchObject({
      id: '1-11',
      consumer: 'writer',
      reason: 'foreign',
      partition: 1,
      offset: '11',
      key: 'drop',
      raw: Buffer.from('{"trunc').toString('base64'),
    });
    expect(sorted.stop?.message).toMatch(
      /writer stopped at partition 1 offset 13: EntrantRegistered of version 2, this build knows version 1/,
    );
    expect(sorted.last).toBe(12n);
  });

  it('moves past nothing when the first record is newer', () => {
    const sorted = sortBatch('writer', 'events', 0, [message(5, { ...entrant(), version: EVENT_VERSION + 1 }), message(6, entrant())]);
    expect(sorted.last).toBeNull();
    expect(sorted.logged).toEqual([]);
  });

  it('moves past skipped records without decoding them', () => {
    const sorted = sortBatch('writer', 'events', 0, [message(5, '{bad'), message(6, entrant())], { skip: (m) => m.offset === '5' });
    expect(sorted.parked).toEqual([]);
    expect(sorted.last).toBe(6n);
  });
});

describe('a batch whose last records were filtered out by the consumer (a commit marker)', () => {
  it('is moved past to its last offset, unless it stopped at a newer event', () => {
    const whole = sortBatch('p', 'events', 0, [message(5, entrant())], { lastOffset: '6' });
    expect(whole.last).toBe(6n);
    const stopped = sortBatch('p', 'events', 0, [message(5, entrant()), message(6, { ...entrant(), version: EVENT_VERSION + 1 })], {
      lastOffset: '7',
    });
    expect(stopped.last).toBe(5n);
  });
});

describe("the single writer's decisions travel packed: one record per decision", () => {
  const winner = (campaignId: string, userId: string, position: number) => ({
    type: 'WinnerSelected',
    version: EVENT_VERSION,
    eventId: `winner:${campaignId}:${userId}`,
    campaignId,
    occurredAt: '2026-11-29T12:00:00.000Z',
    userId,
    position,
    ticket: `0-${position}`,
  });
  const gifticon = (campaignId: string, userId: string, position: number) => ({
    type: 'GifticonIssued',
    version: EVENT_VERSION,
    eventId: `gifticon:${campaignId}:${userId}`,
    campaignId,
    occurredAt: '2026-11-29T12:00:00.000Z',
    userId,
    gifticonId: `g-${userId}`,
    code: `code-${userId}`,
    position,
  });
  const decisions = (campaignId: string, users: number) =>
    Array.from({ length: users }, (_, i) => [winner(campaignId, `u${i}`, i + 1), gifticon(campaignId, `u${i}`, i + 1)]).flat();
  const asRead = (m: ReturnType<typeof toPackedMessages>[number], offset: number): KafkaMessage =>
    ({
      offset: String(offset),
      key: Buffer.from(String(m.key)),
      value: Buffer.from(m.value as string),
      headers: m.headers,
      timestamp: '0',
      attributes: 0,
    }) as KafkaMessage;

  const soldOut = (campaignId: string) => ({
    type: 'CampaignSoldOut',
    version: EVENT_VERSION,
    eventId: `soldout:${campaignId}`,
    campaignId,
    occurredAt: '2026-11-29T12:00:00.000Z',
    winners: 2,
  });

  it("gives every reader each event, in order, with its own id and its record's offset", () => {
    const events = [...decisions('a', 2), soldOut('a'), ...decisions('b', 1)];
    const messages = toPackedMessages(events as never, 6);
    // a winner and its gifticon, the last winner with the sold-out, per record
    expect(messages.map((m) => (JSON.parse(m.value as string) as unknown[]).length)).toEqual([2, 3, 2]);
    expect(messages.map((m) => m.key)).toEqual(['a', 'a', 'b']);
    const sorted = sortBatch(
      'reader',
      'events',
      1,
      messages.map((m, i) => asRead(m, 40 + i)),
    );
    expect(sorted.logged.map((l) => l.event.eventId)).toEqual(events.map((e) => e.eventId));
    expect(sorted.logged.map((l) => l.offset)).toEqual([40n, 40n, 41n, 41n, 41n, 42n, 42n]);
    expect(sorted.parked).toEqual([]);
    expect(eventIdsOf(messages[2]!.headers)).toEqual(decisions('b', 1).map((e) => e.eventId));
  });

  it('leaves an event outside a decision a plain record', () => {
    const [lone] = toPackedMessages([soldOut('a')] as never, 6);
    expect(decodeValue(Buffer.from(lone!.value as string), 0, 0n).kind).toBe('event');
    expect(eventIdsOf(lone!.headers)).toEqual(['soldout:a']);
  });

  it('is parked whole when one of its events is foreign, and stops whole at a newer one', () => {
    const bad = decodeRecord(value([winner('a', 'u', 1), { ...gifticon('a', 'u', 1), code: 7 }]), 2, 9n);
    expect(bad).toEqual([
      expect.objectContaining({ kind: 'foreign', offset: 9n, error: expect.stringMatching(/packed record, event 2: .*code/) }),
    ]);
    const newer = decodeRecord(value([winner('a', 'u', 1), { ...gifticon('a', 'u', 1), version: SEALED_GIFTICON_VERSION + 1 }]), 2, 9n);
    expect(newer).toEqual([expect.objectContaining({ kind: 'newer', type: 'GifticonIssued' })]);
    expect(decodeRecord(value([]), 2, 9n)).toEqual([expect.objectContaining({ kind: 'foreign' })]);
  });
});

describe('the hand-written checks and the event schema', () => {
  // each field of an event, and an entry's replyTo, replaced by values of every kind the schema looks at
  const odd: unknown[] = [
    undefined,
    null,
    0,
    1,
    2,
    1.5,
    -1,
    2 ** 53,
    true,
    '',
    ' ',
    'x'.repeat(301),
    'a b',
    'Drop!',
    'drop',
    'alice',
    '0-1',
    '12-345',
    '-1',
    '1-',
    '2026-11-29T12:00:00.000Z',
    '2026-13-45T99:00:00Z',
    'yesterday',
    [],
    {},
    ['x'],
    { instance: 'i' },
    { instance: 'i', request: 'r' },
    { instance: 1, request: 'r' },
  ];
  const base = {
    EntrantRegistered: entrant(),
    WinnerSelected: {
      type: 'WinnerSelected',
      version: EVENT_VERSION,
      eventId: 'winner:drop:alice',
      campaignId: 'drop',
      occurredAt: '2026-11-29T12:00:00.000Z',
      userId: 'alice',
      position: 3,
      ticket: '0-17',
    },
    GifticonIssued: {
      type: 'GifticonIssued',
      version: EVENT_VERSION,
      eventId: 'gifticon:drop:alice',
      campaignId: 'drop',
      occurredAt: '2026-11-29T12:00:00.000Z',
      userId: 'alice',
      gifticonId: 'g-1',
      code: 'c-1',
      position: 3,
    },
  };
  const checks = { EntrantRegistered: isEntrantRegistered, WinnerSelected: isWinnerSelected, GifticonIssued: isGifticonIssued };
  const fields = [
    'type',
    'version',
    'eventId',
    'campaignId',
    'occurredAt',
    'userId',
    'replyTo',
    'position',
    'ticket',
    'gifticonId',
    'code',
    'extra',
  ] as const;

  it.each(Object.keys(base) as (keyof typeof base)[])('%s: accepts exactly what the schema accepts', (type) => {
    const event = base[type];
    const variants: Record<string, unknown>[] = [
      event,
      { ...event, eventId: 'x'.repeat(300) },
      { ...event, userId: 'u'.repeat(128) },
      { ...event, userId: 'u'.repeat(129) },
    ];
    if (type === 'EntrantRegistered') variants.push({ ...event, replyTo: { instance: 'api-1', request: 'r-1' } });
    for (const field of fields) {
      for (const v of odd) {
        const e: Record<string, unknown> = { ...event, [field]: v };
        if (v === undefined) delete e[field];
        variants.push(e);
      }
    }
    const accepted = variants.filter((v) => eventSchema.safeParse(v).success && v.type === type);
    // both sides are exercised: events the schema takes, and many it refuses
    expect(accepted.length).toBeGreaterThan(10);
    expect(variants.length - accepted.length).toBeGreaterThan(50);
    for (const v of variants) expect({ v, ok: checks[type](v) }).toEqual({ v, ok: eventSchema.safeParse(v).success && v.type === type });
  });

  it('takes no type by a name every object has', () => {
    for (const type of ['constructor', 'toString', '__proto__', 'hasOwnProperty'])
      expect(decode({ ...entrant(), type })).toMatchObject({ kind: 'foreign' });
  });

  it('leaves the reason for a refused entry to the schema', () => {
    expect(decode({ ...entrant(), replyTo: { instance: 'i' } })).toMatchObject({
      kind: 'foreign',
      error: expect.stringMatching(/replyTo\.request/),
    });
  });
});

describe("the API's entry (entrantRegistered)", () => {
  it('is an event of this log, its id naming the request, and reads back as itself', () => {
    const e = entrantRegistered('c1', 'user-1', new Date('2026-11-30T00:00:00.000Z'), { instance: 'i1', request: 'r1' });
    expect(e).toEqual({
      type: 'EntrantRegistered',
      version: EVENT_VERSION,
      eventId: 'entrant:c1:user-1:r1',
      campaignId: 'c1',
      occurredAt: '2026-11-30T00:00:00.000Z',
      userId: 'user-1',
      replyTo: { instance: 'i1', request: 'r1' },
    });
    expect(isEntrantRegistered(e as unknown as Record<string, unknown>)).toBe(true);
    expect(eventSchema.safeParse(e).success).toBe(true);
    const d = decodeValue(Buffer.from(toMessage(e, 6).value as string), 0, 7n);
    expect(d).toEqual({ kind: 'event', logged: { event: e, partition: 0, offset: 7n } });
  });
});

describe("the issuer's parking of a winner's issuance (issuanceParked)", () => {
  it('is an event of this log, its id naming the record that asked, and one without its parked record is foreign', () => {
    const e = issuanceParked(
      { campaignId: 'c1', userId: 'user-1', position: 3 },
      'issuer:c1:3',
      '41',
      new Date('2026-12-06T00:00:00.000Z'),
    );
    expect(e).toEqual({
      type: 'IssuanceParked',
      version: EVENT_VERSION,
      eventId: 'parked:c1:user-1:41',
      campaignId: 'c1',
      occurredAt: '2026-12-06T00:00:00.000Z',
      userId: 'user-1',
      position: 3,
      parkedId: 'issuer:c1:3',
    });
    const d = decodeValue(Buffer.from(toMessage(e, 6).value as string), 0, 7n);
    expect(d).toEqual({ kind: 'event', logged: { event: e, partition: 0, offset: 7n } });
    expect(decode({ ...e, parkedId: undefined }).kind).toBe('foreign');
  });
});

describe('the genesis record at offset 0 of each partition', () => {
  const genesis = { firstcome: 'genesis', logId: 'log-a', topic: 't.events', partitions: 2, createdAt: '2026-12-06T06:00:00.000Z' };

  it('is read as the log id, not as a foreign record', () => {
    expect(decode(genesis)).toEqual({ kind: 'genesis', logId: 'log-a', partition: 1, offset: 42n });
    expect(decode({ ...genesis, logId: '' }).kind).toBe('foreign');
  });

  it('is neither parked nor handed on as an event, and the consumer moves past it', () => {
    const sorted = sortBatch('prisma-tables', 't.events', 0, [message(0, genesis), message(1, entrant('bob'))]);
    expect(sorted.parked).toEqual([]);
    expect(sorted.logged.map((l) => l.offset)).toEqual([1n]);
    expect(sorted.last).toBe(1n);
  });
});
