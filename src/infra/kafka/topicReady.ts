import type { Admin } from 'kafkajs';

/**
 * Topic admin on a cluster that is still settling. Right after a topic is created its leaders may
 * not serve it yet ("This server does not host this topic-partition"), and a metadata refresh that
 * names it can fail the same way for a while: the more brokers, and the busier the machine, the
 * longer (a 3-broker cluster on 2 busy cores took seconds, past KafkaJS's own retries).
 */

/** Runs `step` until it succeeds, retrying what the broker says is worth retrying, up to `timeoutMs`. */
export async function settling<T>(step: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await step();
    } catch (err) {
      // a broker briefly fenced while the cluster starts makes a replication factor look too high for a moment
      const e = err as { retriable?: boolean; type?: string; message?: string };
      const retriable =
        e.retriable === true ||
        e.type === 'INVALID_REPLICATION_FACTOR' ||
        /does not host this topic-partition|leader/i.test(String(e.message));
      if (!retriable || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** A topic is ready once every partition's leader answers a ListOffsets for it. */
export function servedByLeaders(admin: Admin, topic: string, timeoutMs = 30_000): Promise<unknown> {
  return settling(() => admin.fetchTopicOffsets(topic), timeoutMs);
}

/**
 * How many replicas a new topic gets: KAFKA_REPLICATION_FACTOR when set, else as many brokers as
 * answer, at most 3. (Read from the cluster alone, a broker that is briefly fenced while the cluster
 * starts would give a topic one replica fewer, for good.)
 */
export async function replicationOf(admin: Admin, configured: number | undefined): Promise<number> {
  if (configured !== undefined) return configured;
  return Math.min(3, (await settling(() => admin.describeCluster())).brokers.length);
}
