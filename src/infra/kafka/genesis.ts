import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { decodeMessage, toGenesisMessage } from './codec.js';
import type { LogIdentity } from './logIdentity.js';
import { settling } from './topicReady.js';

/**
 * The genesis records of a topic firstcome has just created: one at offset 0 of every partition,
 * all with the same new log id. Written only by the process whose CreateTopics made the topic, before
 * that process appends anything, so offset 0 is the genesis unless another process appended in the
 * moment between (its identity then has no log id, as a topic from before genesis records has).
 */
export async function writeGenesis(kafka: Kafka, topic: string, partitions: number): Promise<string> {
  const logId = randomUUID();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const createdAt = new Date().toISOString();
    const messages = Array.from({ length: partitions }, (_, p) => toGenesisMessage({ logId, topic, partitions, createdAt }, p));
    await settling(() => producer.send({ topic, acks: -1, messages }));
  } finally {
    await producer.disconnect();
  }
  return logId;
}

/**
 * The identity of the log this process finds: the cluster's id, the topic's partition count, and
 * the log id of the genesis record at offset 0 of partition 0 (null when the record there is not
 * one, or the partition is empty). Read with a throwaway group, deleted afterwards.
 */
export async function readLogIdentity(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  timeoutMs = 30_000,
  /** how long an empty partition 0 is waited on for its creator's genesis */
  emptyWaitMs = 15_000,
): Promise<LogIdentity> {
  const { clusterId } = await settling(() => admin.describeCluster());
  const meta = await settling(() => admin.fetchTopicMetadata({ topics: [topic] }));
  const partitions = meta.topics[0]?.partitions.length ?? 0;
  const zero = await firstPartitionWritten(kafka, admin, topic, partitions, emptyWaitMs);
  const logId = zero && BigInt(zero.high) > 0n && BigInt(zero.low) === 0n ? await firstRecordGenesis(kafka, admin, topic, timeoutMs) : null;
  return { clusterId, topic, partitions, logId };
}

/**
 * Partition 0's offsets once it holds a record. A process that starts beside the one that created
 * the topic can find it still empty, before its creator wrote the genesis: it waits for it (up to
 * `waitMs`), and where nothing came, the creator died in between, so it writes the genesis itself
 * (any process may: offset 0 of partition 0 is the one that counts).
 */
async function firstPartitionWritten(kafka: Kafka, admin: Admin, topic: string, partitions: number, waitMs: number) {
  const zero = async () => (await settling(() => admin.fetchTopicOffsets(topic))).find((o) => o.partition === 0);
  const end = Date.now() + waitMs;
  for (;;) {
    const z = await zero();
    if (!z || BigInt(z.high) > 0n) return z;
    if (Date.now() > end) {
      await writeGenesis(kafka, topic, partitions);
      return zero();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function firstRecordGenesis(kafka: Kafka, admin: Admin, topic: string, timeoutMs: number): Promise<string | null> {
  const groupId = `${topic}.identity.${randomUUID().slice(0, 8)}`;
  const consumer = kafka.consumer({
    groupId,
    readUncommitted: false,
    maxWaitTimeInMs: 100,
    sessionTimeout: 10_000,
    maxBytesPerPartition: 64 * 1024,
  });
  let found!: (logId: string | null) => void;
  let failed!: (err: unknown) => void;
  const first = new Promise<string | null>((res, rej) => ((found = res), (failed = rej)));
  const timer = setTimeout(
    () => failed(new Error(`the first record of ${topic} partition 0 was not read within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (batch.partition !== 0) return;
        // read_committed: an aborted record at offset 0 is never delivered, and then there is no genesis
        const m = batch.messages[0];
        if (!m) return;
        const d = m.offset === '0' ? decodeMessage(m, 0)[0] : undefined;
        found(d?.kind === 'genesis' ? d.logId : null);
      },
    });
    return await first;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
}
