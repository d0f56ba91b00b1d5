import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logged } from '../../domain/events.js';
import { decodeMessage, NewerEventError } from './codec.js';

/**
 * Reads a topic's committed events from offset 0 up to the end it had when the read began, in log
 * order per partition, batch by batch. For checks, audits and tools; the roles consume as groups.
 * A throwaway consumer group is used and deleted afterwards. Records that are not events are
 * skipped (the roles park them); an event of a newer version fails the read (`NewerEventError`).
 */
export async function readLog(
  kafka: Kafka,
  topic: string,
  onBatch: (batch: Logged[], progress: { partition: number; next: bigint; end: bigint }) => Promise<void> | void,
  /** `skip`: records passed over unread (a reader that needs no entries: `namesNoEvent`) */
  opts: { partitions?: number[]; timeoutMs?: number; skip?: (m: KafkaMessage) => boolean } = {},
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${topic}.reader.${Math.random().toString(36).slice(2)}`;
  try {
    const ends = new Map<number, bigint>();
    for (const o of await admin.fetchTopicOffsets(topic)) {
      if (!opts.partitions || opts.partitions.includes(o.partition)) ends.set(o.partition, BigInt(o.high));
    }
    const pending = new Set([...ends].filter(([, end]) => end > 0n).map(([p]) => p));
    if (pending.size === 0) return;
    const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100, sessionTimeout: 10_000 });
    let done!: () => void;
    let fail!: (e: unknown) => void;
    const finished = new Promise<void>((res, rej) => ((done = res), (fail = rej)));
    const reached = (p: number, lastOffset: string) => {
      if (BigInt(lastOffset) + 1n >= ends.get(p)! && pending.delete(p) && pending.size === 0) done();
    };
    // batches of only transaction markers never reach eachBatch, but they do move the position
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      if (e.payload.topic === topic && pending.has(e.payload.partition)) reached(e.payload.partition, e.payload.lastOffset);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const timer = setTimeout(
      () => fail(new Error(`reading ${topic} took longer than ${opts.timeoutMs ?? 600_000} ms`)),
      opts.timeoutMs ?? 600_000,
    );
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = ends.get(batch.partition);
        if (end === undefined || !pending.has(batch.partition)) return;
        const logged: Logged[] = [];
        try {
          for (const m of batch.messages) {
            if (BigInt(m.offset) >= end) break;
            if (opts.skip?.(m)) continue;
            // records that are not events were parked by the consumers that met them: a reader skips them
            for (const d of decodeMessage(m, batch.partition)) {
              if (d.kind === 'event') logged.push(d.logged);
              else if (d.kind === 'newer') throw new NewerEventError('log reader', d);
            }
          }
          if (logged.length) await onBatch(logged, { partition: batch.partition, next: BigInt(batch.lastOffset()) + 1n, end });
        } catch (err) {
          fail(err);
          throw err;
        }
      },
    });
    try {
      await finished;
    } finally {
      clearTimeout(timer);
      await consumer.disconnect();
    }
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
