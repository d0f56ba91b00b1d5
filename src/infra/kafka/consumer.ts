import kafkajs, { type Consumer, type EachBatchPayload, type Kafka } from 'kafkajs';
import { unwatched, type HealthReporter } from '../../health.js';
import { logger } from '../../logger.js';
import { backoffMs, pause, RepeatedErrors } from '../../retrying.js';

// not a named export Node can see in KafkaJS's CommonJS (its errors are spread into module.exports)
const { KafkaJSError } = kafkajs;

/**
 * A role's consumer: committed events only, answered as soon as one byte is there (`maxWaitMs` caps
 * the wait on a quiet partition), and a dead member noticed within 10 s.
 */
export function roleConsumer(
  kafka: Kafka,
  groupId: string,
  maxWaitMs: number,
  /** how much one fetch may bring (KafkaJS's defaults: 1 MB per partition, 10 MB in all), and waits for (1 byte, unless said) */
  fetch: { minBytes?: number; maxBytesPerPartition?: number; maxBytes?: number } = {},
): Consumer {
  return kafka.consumer({
    groupId,
    readUncommitted: false,
    maxWaitTimeInMs: maxWaitMs,
    minBytes: 1,
    ...fetch,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    allowAutoTopicCreation: false,
  });
}

/** Wraps a consumer's eachBatch: a failing batch is reported, logged sparingly and retried after a backoff. */
export type BatchGuard = (handler: (payload: EachBatchPayload) => Promise<void>) => (payload: EachBatchPayload) => Promise<void>;

/**
 * Runs a consumer that outlives broker outages and failing batches, and tells `health` about it.
 *
 * - A batch that throws (its store is gone, a table is missing) is reported failing for its
 *   partition, logged once per minute with a count, and handed back to KafkaJS after an
 *   exponential backoff (capped at 30 s; heartbeats go on meanwhile). KafkaJS then fetches again
 *   from the last resolved offset, as it always does after a failed batch, but no longer logs
 *   each attempt itself. The first batch of that partition that succeeds reports it ok.
 * - KafkaJS restarts a consumer by itself only after retriable errors; after a non-retriable one
 *   (e.g. the broker refused connections for longer than the retries) it stops for good and says so
 *   only in a CRASH event. Here a fresh consumer is built and started instead, after a backoff.
 *
 * `start` builds, subscribes and runs the consumer, its eachBatch wrapped in the guard it is given.
 */
export function keepConsuming(
  name: string,
  start: (guard: BatchGuard) => Promise<Consumer>,
  opts: { health?: HealthReporter } = {},
): { current: () => Consumer | null; ready: Promise<void>; stop: () => Promise<void> } {
  const log = logger.child({ component: name });
  const health = opts.health ?? unwatched;
  const repeats = new RepeatedErrors(log);
  let consumer: Consumer | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let firstStart!: () => void;
  let firstFail!: (e: unknown) => void;
  const ready = new Promise<void>((res, rej) => ((firstStart = res), (firstFail = rej)));
  let started = false;
  let restarts = 0;
  /** partition → failed batches in a row */
  const failures = new Map<number, number>();

  const guard: BatchGuard = (handler) => async (payload) => {
    const p = payload.batch.partition;
    try {
      await handler(payload);
    } catch (err) {
      // KafkaJS's own (a rebalance met by a heartbeat): its business, not a failure of ours
      if (err instanceof KafkaJSError) throw err;
      const n = (failures.get(p) ?? 0) + 1;
      failures.set(p, n);
      health.failing(err, p);
      const wait = backoffMs(n);
      repeats.error(err, `batch failed: retrying`, { partition: p, attempt: n, retryInMs: wait });
      await pause(wait, { each: () => payload.heartbeat(), until: () => !payload.isRunning() || payload.isStale() });
      throw new KafkaJSError(err as Error, { retriable: true });
    }
    if (failures.delete(p)) {
      health.ok(p);
      repeats.recovered('batches succeed again', { partition: p });
    }
  };

  const forgetPartitions = () => {
    for (const p of failures.keys()) health.ok(p);
    failures.clear();
  };

  const relaunch = (err: unknown, msg: string) => {
    health.failing(err, 'consumer');
    const wait = backoffMs(++restarts);
    repeats.error(err, msg, { retryInMs: wait });
    timer = setTimeout(() => void launch(), wait);
  };

  const launch = async (): Promise<void> => {
    if (stopped) return;
    try {
      // a new consumer is assigned afresh: it reports its partitions' failures itself
      forgetPartitions();
      const c = await start(guard);
      consumer = c;
      if (!started) {
        started = true;
        firstStart();
      }
      if (restarts > 0) {
        restarts = 0;
        health.ok('consumer');
        repeats.recovered('consumer running again');
      }
      c.on(c.events.GROUP_JOIN, (e) => {
        // partitions handed to another member are that member's to report
        const mine = new Set(Object.values(e.payload.memberAssignment).flat());
        for (const p of [...failures.keys()]) {
          if (mine.has(p)) continue;
          failures.delete(p);
          health.ok(p);
        }
      });
      c.on(c.events.CRASH, (e) => {
        if (e.payload.restart || stopped) return;
        void c.disconnect().catch(() => undefined);
        relaunch(e.payload.error, 'consumer stopped after a non-retriable error: starting a new one');
      });
    } catch (err) {
      if (!started) return firstFail(err);
      relaunch(err, 'consumer failed to start: trying again');
    }
  };
  void launch();
  return {
    current: () => consumer,
    ready,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await consumer?.disconnect();
    },
  };
}
