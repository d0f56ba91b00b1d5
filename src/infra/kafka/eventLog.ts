import {
  CompressionTypes,
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type Message,
  type Producer,
} from 'kafkajs';
import kafkajs from 'kafkajs';
import type { Config } from '../../config.js';
import type { CampaignEvent, Logged } from '../../domain/events.js';
import { clientLogLevel } from './clientLog.js';
import { decode, NewerEventError, toMessage } from './codec.js';
import { replicationOf, servedByLeaders, settling } from './topicReady.js';
import { unwatched, type HealthReporter } from '../../health.js';
import { logger } from '../../logger.js';
import type { Timing } from '../../metrics.js';
import { backoffMs, pause, RepeatedErrors, RepeatFilter } from '../../retrying.js';

// every message names its partition (partitionFor), so KafkaJS's partitioner never runs
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

export function createKafka(config: Pick<Config, 'KAFKA_BROKERS'>, clientId = 'firstcome'): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId,
    brokers: config.KAFKA_BROKERS,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 100, retries: 8 },
    logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        const chosen = clientLogLevel(level, message, rest.error);
        if (chosen !== 'error') log[chosen](rest, message);
        else {
          // a consumer crash-looping on the same cause says so once a minute, with a count
          const pass = kafkaErrors.admit(`${String(rest.groupId ?? '')} ${message.replace(/\d+/g, '#')}`);
          if (pass?.held) log.error({ ...rest, repeated: pass.held + 1 }, `${message} (${pass.held + 1} times in the last minute)`);
          else if (pass) log.error(rest, message);
        }
      },
  });
}

export { partitionFor } from './partitioning.js';
export { decode, decodeValue, NewerEventError, toMessage, type Decoded } from './codec.js';

const kafkaErrors = new RepeatFilter();
// not a named export Node can see in KafkaJS's CommonJS (its errors are spread into module.exports)
const { KafkaJSError } = kafkajs;

export function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? String(v[0]) : String(v);
}

/** Creates the topics this config needs, idempotently. The campaign-events topic is the store of record. */
export async function ensureTopics(
  admin: Admin,
  config: Pick<Config, 'topics' | 'EVENT_PARTITIONS' | 'KAFKA_REPLICATION_FACTOR'>,
): Promise<void> {
  const existing = new Set(await settling(() => admin.listTopics()));
  const topic = config.topics.events;
  const replicas = await replicationOf(admin, config.KAFKA_REPLICATION_FACTOR);
  const durable = [
    { name: 'retention.ms', value: '-1' },
    { name: 'retention.bytes', value: '-1' },
    { name: 'cleanup.policy', value: 'delete' },
    { name: 'min.insync.replicas', value: String(Math.min(2, replicas)) },
    { name: 'unclean.leader.election.enable', value: 'false' },
  ];
  if (!existing.has(config.topics.parked)) {
    await settling(() =>
      admin.createTopics({
        waitForLeaders: false,
        topics: [{ topic: config.topics.parked, numPartitions: 1, replicationFactor: replicas, configEntries: durable }],
      }),
    );
    await servedByLeaders(admin, config.topics.parked);
  }
  if (existing.has(topic)) {
    const meta = await settling(() => admin.fetchTopicMetadata({ topics: [topic] }));
    const have = meta.topics[0]?.partitions.length ?? 0;
    if (have !== config.EVENT_PARTITIONS) {
      throw new Error(
        `topic ${topic} has ${have} partitions, EVENT_PARTITIONS says ${config.EVENT_PARTITIONS}: ` +
          'a campaign is pinned to its partition, so the count cannot change under a running log',
      );
    }
    return;
  }
  // KafkaJS's own wait for leaders gives up on the first "does not host" answer: servedByLeaders waits
  await settling(() =>
    admin.createTopics({
      waitForLeaders: false,
      topics: [{ topic, numPartitions: config.EVENT_PARTITIONS, replicationFactor: replicas, configEntries: durable }],
    }),
  );
  await servedByLeaders(admin, topic);
}

export interface Appended {
  partition: number;
  offset: bigint;
}

interface Pending {
  message: Message & { partition: number };
  resolve: (a: Appended) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit. Hot path: KafkaJS sends one request per `send`, ~2k msg/s when awaited one by one,
 * 24k+/s in batches of 100 (FACTS.md). Appends wait at most `lingerMs`, or for the request in flight,
 * and go out together in one `sendBatch` with acks from all in-sync replicas.
 */
export class EventAppender {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private closed = false;
  /** set by a failed send: the next one goes out on a new producer */
  private broken = false;
  timing: Timing = () => undefined;

  private constructor(
    private producer: Producer,
    private readonly newProducer: () => Producer,
    private readonly topic: string,
    private readonly partitions: number,
    private readonly lingerMs: number,
    private readonly maxBatch = 1000,
  ) {}

  static async connect(kafka: Kafka, config: Pick<Config, 'topics' | 'EVENT_PARTITIONS' | 'APPEND_LINGER_MS'>) {
    // idempotent producer: KafkaJS retries a send with the same sequence numbers, and the broker
    // drops a retried batch it already holds
    const newProducer = () =>
      kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 2000 },
      });
    const producer = newProducer();
    await producer.connect();
    return new EventAppender(producer, newProducer, config.topics.events, config.EVENT_PARTITIONS, config.APPEND_LINGER_MS);
  }

  append(event: CampaignEvent): Promise<Appended> {
    if (this.closed) return Promise.reject(new Error('event appender is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ message: toMessage(event, this.partitions), resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.timer && this.inFlight === 0) this.timer = setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.maxBatch);
    this.inFlight++;
    void this.send(batch).finally(() => {
      this.inFlight--;
      // whatever queued up behind the request in flight has waited long enough already
      if (this.pending.length > 0 && this.inFlight === 0) this.flush();
    });
  }

  private async send(batch: Pending[]): Promise<void> {
    const started = performance.now();
    try {
      if (this.broken) await this.renew();
      const results = await this.producer.send({
        topic: this.topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: batch.map((p) => p.message),
      });
      // KafkaJS writes each partition's messages as one record batch, in the order given
      const base = new Map(results.map((r) => [r.partition, BigInt(r.baseOffset ?? '0')]));
      const seen = new Map<number, bigint>();
      for (const p of batch) {
        const k = p.message.partition;
        const i = seen.get(k) ?? 0n;
        seen.set(k, i + 1n);
        const b = base.get(k);
        if (b === undefined) p.reject(new Error(`no offset returned for partition ${k}`));
        else p.resolve({ partition: k, offset: b + i });
      }
      this.timing('append', (performance.now() - started) / 1000, batch.length);
    } catch (err) {
      // Nothing of this batch is acknowledged, though the broker may hold it (its answer was lost).
      // KafkaJS then hands the batch's sequence numbers to the next send, and the broker takes a
      // next batch of the same size for a retry of this one: it answers with this batch's offsets
      // and drops the new entries. Acknowledged and lost (seen after a broker SIGKILL: three
      // acknowledged entries whose tickets named other users' entries). So a failed send retires
      // its producer; the next one starts a new producer id, whose sequences begin at 0.
      this.broken = true;
      for (const p of batch) p.reject(err);
    }
  }

  private async renew(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
    this.producer = this.newProducer();
    await this.producer.connect();
    this.broken = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.pending.length > 0 || this.inFlight > 0) {
      this.flush();
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.producer.disconnect();
  }
}

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
  opts: { partitions?: number[]; timeoutMs?: number } = {},
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
    const timer = setTimeout(() => fail(new Error(`reading ${topic} took longer than ${opts.timeoutMs ?? 600_000} ms`)), opts.timeoutMs ?? 600_000);
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = ends.get(batch.partition);
        if (end === undefined || !pending.has(batch.partition)) return;
        const logged: Logged[] = [];
        try {
          for (const m of batch.messages) {
            if (BigInt(m.offset) >= end) break;
            const d = decode(m, batch.partition);
            // records that are not events were parked by the consumers that met them: a reader skips them
            if (d.kind === 'event') logged.push(d.logged);
            else if (d.kind === 'newer') throw new NewerEventError('log reader', d);
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

/**
 * A role's consumer: committed events only, answered as soon as one byte is there (`maxWaitMs` caps
 * the wait on a quiet partition), and a dead member noticed within 10 s.
 */
export function roleConsumer(kafka: Kafka, groupId: string, maxWaitMs: number): Consumer {
  return kafka.consumer({
    groupId,
    readUncommitted: false,
    maxWaitTimeInMs: maxWaitMs,
    minBytes: 1,
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
