import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Kafka, logLevel, type Admin, type ISocketFactory } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { entrantRegistered, EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { decode, namesNoEvent, toMessage } from '../../src/infra/kafka/codec.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { waitUntil } from '../support/wait.js';

/** The real broker: a produce/consume round trip, and consume-transform-produce in a transaction. */
const config = loadConfig({ ...process.env, TOPIC_PREFIX: `t.kafka-${randomBytes(4).toString('hex')}`, EVENT_PARTITIONS: '3' });
const kafka = new Kafka({ clientId: 'kafka-int', brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
let admin: Admin;
const created = (id: string): CampaignEvent => ({
  type: 'CampaignCreated',
  version: EVENT_VERSION,
  eventId: `created:${id}`,
  campaignId: id,
  occurredAt: new Date().toISOString(),
  title: 't',
  reward: 'r',
  stock: 1,
  opensAt: new Date().toISOString(),
  closesAt: new Date(Date.now() + 60_000).toISOString(),
});
const topicsToDelete: string[] = [];

/**
 * A reader of one topic from its start, counting its fetches, so a test can wait until it has
 * looked several times instead of sleeping and hoping it looked.
 */
async function watch(topic: string, readUncommitted: boolean) {
  const groupId = `${topic}.watch.${readUncommitted ? 'dirty' : 'committed'}`;
  const consumer = kafka.consumer({ groupId, readUncommitted, maxWaitTimeInMs: 100 });
  const w = { seen: [] as string[], fetches: 0, stop: () => consumer.disconnect() };
  consumer.on(consumer.events.FETCH, () => void w.fetches++);
  let joined!: () => void;
  const join = new Promise<void>((r) => (joined = r));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message, partition }) => {
      const d = decode(message, partition);
      if (d.kind !== 'event') throw new Error(`not an event at ${partition}-${message.offset}: ${d.kind}`);
      w.seen.push(d.logged.event.eventId);
    },
  });
  await join;
  return w;
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin.deleteTopics({ topics: [config.topics.events, ...topicsToDelete] }).catch(() => undefined);
  await admin.disconnect();
});

describe('the event log on the real broker', () => {
  it('creates its topic idempotently, with unlimited retention and the configured partitions', async () => {
    await ensureTopics(admin, config);
    await ensureTopics(admin, config);
    const meta = await admin.fetchTopicMetadata({ topics: [config.topics.events] });
    expect(meta.topics[0]!.partitions).toHaveLength(3);
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: config.topics.events }] });
    const entries = Object.fromEntries(described.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
    expect(entries['retention.ms']).toBe('-1');
    expect(entries['retention.bytes']).toBe('-1');
    await expect(ensureTopics(admin, { ...config, EVENT_PARTITIONS: 4 })).rejects.toThrow(/cannot change/);
  });

  it('round-trips group-committed appends: offsets as returned, one campaign on one partition, in order', async () => {
    const appender = await EventAppender.connect(kafka, config);
    const ids = Array.from({ length: 60 }, (_, i) => `camp-${i % 6}`);
    const appended = await Promise.all(ids.map((id) => appender.append(created(id))));
    await appender.close();
    for (const [i, a] of appended.entries()) expect(a.partition).toBe(partitionFor(ids[i]!, 3));
    const seen: { id: string; partition: number; offset: bigint }[] = [];
    await readLog(kafka, config.topics.events, (batch) => {
      for (const l of batch) seen.push({ id: l.event.campaignId, partition: l.partition, offset: l.offset });
    });
    expect(seen).toHaveLength(60);
    for (const [i, a] of appended.entries()) {
      expect(seen.find((s) => s.partition === a.partition && s.offset === a.offset)?.id).toBe(ids[i]);
    }
  });

  it('passes over the records a reader skips unread, and still reads to the end', async () => {
    const appender = await EventAppender.connect(kafka, config);
    const replyTo = { instance: 'i', request: 'r' };
    await Promise.all([
      appender.append(created('skip-a')),
      ...Array.from({ length: 20 }, (_, i) => appender.append(entrantRegistered('skip-a', `u${i}`, new Date(), replyTo))),
      appender.append(created('skip-b')),
    ]);
    await appender.close();
    const all: CampaignEvent[] = [];
    await readLog(kafka, config.topics.events, (batch) => void all.push(...batch.map((l) => l.event)));
    const kept: CampaignEvent[] = [];
    await readLog(kafka, config.topics.events, (batch) => void kept.push(...batch.map((l) => l.event)), { skip: namesNoEvent });
    expect(all.filter((e) => e.type === 'EntrantRegistered')).toHaveLength(20);
    expect(kept.map((e) => e.type)).not.toContain('EntrantRegistered');
    expect(kept.map((e) => e.eventId).sort()).toEqual(
      all
        .filter((e) => e.type !== 'EntrantRegistered')
        .map((e) => e.eventId)
        .sort(),
    );
  });

  it('shows a consume-transform-produce transaction to a read_committed reader only after commit', async () => {
    const input = `${config.topics.events}.in`;
    const output = `${config.topics.events}.out`;
    topicsToDelete.push(input, output);
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: input, numPartitions: 1 },
        { topic: output, numPartitions: 1 },
      ],
    });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: input, messages: [{ value: JSON.stringify(created('tx')) }] });
    await producer.disconnect();

    const txProducer = kafka.producer({ transactionalId: `${input}.tx`, idempotent: true, maxInFlightRequests: 1 });
    await txProducer.connect();
    const groupId = `${input}.group`;
    const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: input, fromBeginning: true });
    let open!: () => void;
    const transactionOpen = new Promise<void>((r) => (open = r));
    let release!: () => void;
    const commitAllowed = new Promise<void>((r) => (release = r));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const tx = await txProducer.transaction();
        const d = decode(batch.messages[0]!, batch.partition);
        if (d.kind !== 'event') throw new Error(`expected an event, got ${d.kind}`);
        const l = d.logged;
        await tx.send({ topic: output, messages: [{ ...toMessage({ ...l.event, eventId: 'transformed' }, 1), partition: 0 }] });
        await tx.sendOffsets({
          consumerGroupId: groupId,
          topics: [{ topic: input, partitions: [{ partition: 0, offset: String(BigInt(batch.lastOffset()) + 1n) }] }],
        });
        open();
        await commitAllowed;
        await tx.commit();
      },
    });

    await transactionOpen;
    // written: a read_uncommitted reader sees it, so the topic is there and readable
    const dirty = await watch(output, true);
    const committed = await watch(output, false);
    try {
      await waitUntil(
        async () => dirty.seen,
        (s) => s.length === 1,
        { what: 'the uncommitted record reaches a read_uncommitted reader' },
      );
      expect(dirty.seen).toEqual(['transformed']);
      // not committed: a read_committed reader that has fetched past it several times saw nothing
      const from = committed.fetches;
      await waitUntil(
        async () => committed.fetches,
        (n) => n >= from + 3,
        { what: 'three more fetches of the read_committed reader' },
      );
      expect(committed.seen).toEqual([]);
      // nor does the audits' reader (any error it meets fails the test)
      const seenBefore: string[] = [];
      await readLog(kafka, output, (b) => void seenBefore.push(...b.map((l) => l.event.eventId)), { timeoutMs: 10_000 });
      expect(seenBefore).toEqual([]);

      release();
      await waitUntil(
        async () => committed.seen,
        (s) => s.length > 0,
        { what: 'the committed record reaches the read_committed reader' },
      );
      expect(committed.seen).toEqual(['transformed']);
      const seenAfter: string[] = [];
      await readLog(kafka, output, (b) => void seenAfter.push(...b.map((l) => l.event.eventId)), { timeoutMs: 10_000 });
      expect(seenAfter).toEqual(['transformed']);
    } finally {
      await Promise.all([dirty.stop(), committed.stop()]);
    }
    await consumer.disconnect();
    await txProducer.disconnect();
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [input] });
    expect(offsets!.partitions[0]!.offset).toBe('1'); // the input offset committed with the output
  });

  it('acknowledges nothing it lost when the answer to a send never came and the broker stayed away', async () => {
    // The network between the appender and the real broker: a produce request reaches the broker,
    // its answer is never read, and new connections are refused for a while, until KafkaJS gives up.
    let network: 'up' | 'lose-next-produce-answer' | 'down' = 'up';
    const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
      if (network === 'down') {
        const refused = new net.Socket();
        process.nextTick(() =>
          refused.destroy(Object.assign(new Error(`connect ECONNREFUSED ${host}:${port} (injected)`), { code: 'ECONNREFUSED' })),
        );
        return refused;
      }
      const socket = net.connect({ host, port }, onConnect);
      const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
      socket.write = ((chunk: unknown, ...rest: unknown[]) => {
        // a request is [int32 size][int16 apiKey]…; apiKey 0 is Produce
        if (network === 'lose-next-produce-answer' && Buffer.isBuffer(chunk) && chunk.length > 6 && chunk.readInt16BE(4) === 0) {
          network = 'down';
          socket.pause();
          setTimeout(() => socket.destroy(Object.assign(new Error('read ECONNRESET (injected)'), { code: 'ECONNRESET' })), 500);
        }
        return write(chunk, ...rest);
      }) as typeof socket.write;
      return socket;
    };
    const faulty = new Kafka({
      clientId: 'kafka-int-lossy',
      brokers: config.KAFKA_BROKERS,
      logLevel: logLevel.NOTHING,
      socketFactory,
      retry: { retries: 2, initialRetryTime: 50 },
    });
    const topic = {
      ...config,
      topics: { events: `${config.topics.events}.lossy`, parked: `${config.topics.parked}.lossy` },
      EVENT_PARTITIONS: 1,
    };
    topicsToDelete.push(topic.topics.events, topic.topics.parked);
    await ensureTopics(admin, topic);
    const appender = await EventAppender.connect(faulty, topic);
    const first = await appender.append(created('before'));

    network = 'lose-next-produce-answer';
    await expect(appender.append(created('lost-answer'))).rejects.toThrow();
    network = 'up';
    // the same size as the batch whose answer was lost: KafkaJS alone would reuse its sequence
    // numbers, and the broker would answer with that batch's offset and drop this one
    const after = await appender.append(created('after'));
    await appender.close();

    const seen = new Map<bigint, string>();
    await readLog(kafka, topic.topics.events, (b) => {
      for (const l of b) seen.set(l.offset, l.event.campaignId);
    });
    expect(seen.get(first.offset)).toBe('before');
    expect(seen.get(after.offset)).toBe('after');
    // the batch whose answer was lost did reach the broker: it was not acknowledged, and not lost either
    expect([...seen.values()].sort()).toEqual(['after', 'before', 'lost-answer']);
  });
});
