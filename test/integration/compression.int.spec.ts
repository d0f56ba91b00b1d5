import kafkajs, { CompressionTypes, type Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, RedisOrdering, writerPorts } from '../../projections/redis-ordering/index.js';
import type { Config } from '../../src/config.js';
import { EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { COMPRESSIONS, unavailable, type Compression } from '../../src/infra/kafka/compression.js';
import { Parking } from '../../src/infra/kafka/parking.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { SingleWriter } from '../../src/writer/singleWriter.js';
import { isolated, type Isolated } from '../support/app.js';
import { auditFromLog } from '../support/audit.js';
import { readWithJavaClient } from '../support/java.js';
import { waitUntil } from '../support/wait.js';

/**
 * Every KAFKA_COMPRESSION setting through the real broker: entries appended by the API's appender
 * and decisions committed by the single writer's transactions, read back by KafkaJS (the log reader
 * the audits use) and by Kafka's own Java client, with I1–I3 holding on what was read.
 */
const usable = COMPRESSIONS.filter((c) => !unavailable(c));

/**
 * Codec → the event types found in the batches it decompressed in this process since the last clear:
 * which producer wrote what with which codec, as the log's readers met it.
 */
const met = new Map<Compression, Set<string>>();
const TYPES = ['CampaignCreated', 'EntrantRegistered', 'WinnerSelected', 'GifticonIssued'];
beforeAll(() => {
  const table = kafkajs.CompressionCodecs as Record<number, () => { compress: unknown; decompress: (b: Buffer) => Promise<Buffer> }>;
  const names: [CompressionTypes, Compression][] = [
    [CompressionTypes.GZIP, 'gzip'],
    [CompressionTypes.LZ4, 'lz4'],
    [CompressionTypes.Snappy, 'snappy'],
    [CompressionTypes.ZSTD, 'zstd'],
  ];
  for (const [type, name] of names) {
    if (unavailable(name)) continue;
    const real = table[type]!;
    table[type] = () => {
      const codec = real();
      return {
        compress: codec.compress,
        decompress: async (b: Buffer) => {
          const out = await codec.decompress(b);
          const types = met.get(name) ?? met.set(name, new Set()).get(name)!;
          for (const t of TYPES) if (out.includes(t)) types.add(t);
          return out;
        },
      };
    };
  }
});

const now = Date.now();
const at = (ms = 0) => new Date(now + ms).toISOString();
const created = (c: string, stock: number): CampaignEvent => ({
  type: 'CampaignCreated',
  version: EVENT_VERSION,
  eventId: `created:${c}`,
  campaignId: c,
  occurredAt: at(),
  title: 'Compressed',
  reward: 'Cake',
  stock,
  opensAt: at(-1000),
  closesAt: at(3_600_000),
});
const entrant = (c: string, user: string, request: string): CampaignEvent => ({
  type: 'EntrantRegistered',
  version: EVENT_VERSION,
  eventId: `entrant:${c}:${user}:${request}`,
  campaignId: c,
  occurredAt: at(),
  userId: user,
});

let iso: Isolated | null = null;
let redis: Redis | null = null;
let writer: SingleWriter | null = null;
let parking: Parking | null = null;
afterEach(async () => {
  await writer?.stop();
  await parking?.close();
  redis?.disconnect();
  await iso?.cleanup();
  writer = parking = redis = iso = null;
});

async function setUp(name: string, compression: Compression): Promise<{ config: Config; kafka: Kafka }> {
  iso = await isolated(name, { EVENT_PARTITIONS: '1', KAFKA_COMPRESSION: compression });
  const kafka = createKafka(iso.config, name);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, iso.config);
  await admin.disconnect();
  return { config: iso.config, kafka };
}

async function startWriter(kafka: Kafka, config: Config): Promise<void> {
  redis = createRedis(config.REDIS_URL);
  parking = await Parking.connect(kafka, config);
  writer = new SingleWriter(kafka, writerPorts(new RedisOrdering(redis, config.REDIS_PREFIX), config.topics.events), config, parking);
  await writer.start();
}

/**
 * Java's read of the events topic, as `<offset>:<eventId>` sorted (a decision record carries
 * its events as a JSON array under one offset; records that are not events left out).
 */
async function javaEventIds(config: Config): Promise<string[]> {
  const records = await readWithJavaClient(config.KAFKA_BROKERS, config.topics.events);
  const ids: string[] = [];
  for (const r of records) {
    try {
      const value = JSON.parse(r.value) as { eventId: string } | { eventId: string }[];
      for (const e of Array.isArray(value) ? value : [value]) ids.push(`${r.offset}:${e.eventId}`);
    } catch {
      /* not an event: the consumers park it */
    }
  }
  return ids.sort();
}

/** The same for what KafkaJS read (the audit's log). */
const kafkaJsEventIds = (log: readonly { offset: bigint; event: { eventId: string } }[]) =>
  log.map((l) => `${l.offset}:${l.event.eventId}`).sort();

describe('KAFKA_COMPRESSION on the real broker', () => {
  for (const compression of usable) {
    it(`${compression}: appended entries and committed decisions read back the same, by KafkaJS and by the Java client, and I1–I3 hold`, async () => {
      const { config, kafka } = await setUp(`compress-${compression}`, compression);
      const c = `gift-${compression}`;
      const stock = 10;
      const appender = await EventAppender.connect(kafka, config);
      await appender.append(created(c, stock));
      // 30 users, 5 of whom click twice: group-committed into batches of several records
      const users = Array.from({ length: 30 }, (_, i) => `u${i}`);
      await Promise.all([
        ...users.map((u) => appender.append(entrant(c, u, 'a'))),
        ...users.slice(0, 5).map((u) => appender.append(entrant(c, u, 'b'))),
      ]);
      await appender.close();
      await startWriter(kafka, config);
      await waitUntil(
        () => auditFromLog(config, c),
        (a) => a.winners >= stock && a.gifticons >= stock,
        { what: 'every winner decided' },
      );
      await writer!.stop();

      met.clear();
      const audit = await auditFromLog(config, c);
      expect(audit.problems).toEqual([]);
      expect(audit.entrants).toBe(30);
      expect(audit.winners).toBe(stock);
      expect(audit.gifticons).toBe(stock);
      // what the readers decompressed: the appender's entries and the writer's decisions in the configured codec, no other
      expect(met).toEqual(compression === 'none' ? new Map() : new Map([[compression, new Set(TYPES)]]));

      const java = await javaEventIds(config);
      expect(java).toEqual(kafkaJsEventIds(audit.log));
    });
  }

  it('a log written with every codec in turn is read whole by a writer, KafkaJS and the Java client configured with any other', async () => {
    const [first, ...rest] = usable;
    const { config, kafka } = await setUp('compress-mixed', first!);
    const c = 'gift-mixed';
    const stock = 12;
    const appended: string[] = [];
    for (const [i, compression] of usable.entries()) {
      const appender = await EventAppender.connect(kafka, { ...config, KAFKA_COMPRESSION: compression });
      if (i === 0) await appender.append(created(c, stock));
      await Promise.all(Array.from({ length: 6 }, (_, j) => appender.append(entrant(c, `${compression}-${j}`, 'a'))));
      appended.push(compression);
      await appender.close();
    }
    // a record that is no event, so the writer parks it: the dead-letter topic takes the writer's codec too
    const raw = kafka.producer();
    await raw.connect();
    await raw.send({ topic: config.topics.events, messages: [{ key: c, partition: 0, value: 'not an event' }] });
    await raw.disconnect();
    // the writer sends with the last codec; it reads the others
    const writerCodec = rest.at(-1) ?? first!;
    met.clear();
    await startWriter(kafka, { ...config, KAFKA_COMPRESSION: writerCodec });
    await waitUntil(
      () => auditFromLog(config, c),
      (a) => a.winners >= stock && a.gifticons >= stock,
      { what: 'every winner decided' },
    );
    await writer!.stop();
    // every codec met, each with what it wrote: the writer's decisions in its own
    expect([...met.keys()].sort()).toEqual(usable.filter((u) => u !== 'none').sort());
    for (const [codec, types] of met) {
      const entries = codec === first ? ['CampaignCreated', 'EntrantRegistered'] : ['EntrantRegistered'];
      expect([...types].sort()).toEqual([...entries, ...(codec === writerCodec ? ['GifticonIssued', 'WinnerSelected'] : [])].sort());
    }

    const audit = await auditFromLog(config, c);
    expect(audit.problems).toEqual([]);
    expect(audit.entrants).toBe(6 * usable.length);
    expect(audit.winners).toBe(stock);
    expect(audit.gifticons).toBe(stock);
    expect(
      new Set(
        audit.log.filter((l) => l.event.type === 'EntrantRegistered').map((l) => (l.event as { userId: string }).userId.split('-')[0]),
      ),
    ).toEqual(new Set(appended));
    expect(await javaEventIds(config)).toEqual(kafkaJsEventIds(audit.log));

    const parked = await readWithJavaClient(config.KAFKA_BROKERS, config.topics.parked);
    expect(parked.map((r) => (JSON.parse(r.value) as { consumer: string; reason: string }).reason)).toEqual(['foreign']);
  });
});
