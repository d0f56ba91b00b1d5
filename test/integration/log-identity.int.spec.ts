import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { readLogIdentity, writeGenesis } from '../../src/infra/kafka/genesis.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { waitUntil } from '../support/wait.js';

/** The log's identity on the real broker: the genesis record firstcome writes when it creates a topic. */
const config = loadConfig({ ...process.env, TOPIC_PREFIX: `t.identity-${randomBytes(4).toString('hex')}`, EVENT_PARTITIONS: '2' });
const kafka = new Kafka({ clientId: 'identity-int', brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
let admin: Admin;
const topic = config.topics.events;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin.deleteTopics({ topics: [topic, config.topics.parked] }).catch(() => undefined);
  await admin.disconnect();
});

describe('a topic firstcome creates carries the id of its log', () => {
  it('has a genesis record at offset 0 of every partition, which readers skip, and a new id once created again', async () => {
    await ensureTopics(admin, config, kafka);
    const first = await readLogIdentity(kafka, admin, topic);
    expect(first).toMatchObject({ topic, partitions: 2, clusterId: (await admin.describeCluster()).clusterId });
    expect(first.logId).toMatch(/^[0-9a-f-]{36}$/);
    const ends = await admin.fetchTopicOffsets(topic);
    expect(ends.map((o) => o.high).sort()).toEqual(['1', '1']);
    // a reader of the log sees no event in them
    const seen: unknown[] = [];
    await readLog(kafka, topic, (b) => void seen.push(...b));
    expect(seen).toEqual([]);
    // a second ensureTopics (another process starting) writes no second genesis
    await ensureTopics(admin, config, kafka);
    expect((await admin.fetchTopicOffsets(topic)).map((o) => o.high).sort()).toEqual(['1', '1']);

    await admin.deleteTopics({ topics: [topic] });
    await waitUntil(
      () => admin.listTopics(),
      (ts) => !ts.includes(topic),
      { what: 'the topic deleted' },
    );
    await ensureTopics(admin, config, kafka);
    const second = await readLogIdentity(kafka, admin, topic);
    expect(second.logId).not.toBeNull();
    expect(second.logId).not.toBe(first.logId);
  });

  it('is null for a topic whose first record is not a genesis (created before them), so it is adopted as it is', async () => {
    const bare = `${topic}-bare`;
    await admin.createTopics({ topics: [{ topic: bare, numPartitions: 1 }], waitForLeaders: true });
    try {
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: bare, messages: [{ value: '{"type":"NotGenesis"}' }] });
      await producer.disconnect();
      expect((await readLogIdentity(kafka, admin, bare)).logId).toBeNull();
    } finally {
      await admin.deleteTopics({ topics: [bare] }).catch(() => undefined);
    }
  });

  it("waits for an empty topic's genesis, and writes it where its creator never did", async () => {
    const empty = `${topic}-empty`;
    await admin.createTopics({ topics: [{ topic: empty, numPartitions: 2 }], waitForLeaders: true });
    try {
      // a process that starts beside the creator finds the topic before its genesis: it waits for it
      const [found, written] = await Promise.all([readLogIdentity(kafka, admin, empty, 30_000, 10_000), writeGenesis(kafka, empty, 2)]);
      expect(found.logId).toBe(written);
      // nobody writes one: after the wait, the reader does, and every later reader finds the same
      const lone = `${topic}-lone`;
      await admin.createTopics({ topics: [{ topic: lone, numPartitions: 2 }], waitForLeaders: true });
      const first = await readLogIdentity(kafka, admin, lone, 30_000, 500);
      expect(first.logId).toMatch(/^[0-9a-f-]{36}$/);
      expect((await readLogIdentity(kafka, admin, lone, 30_000, 500)).logId).toBe(first.logId);
      await admin.deleteTopics({ topics: [lone] }).catch(() => undefined);
    } finally {
      await admin.deleteTopics({ topics: [empty] }).catch(() => undefined);
    }
  });
});
