import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Config } from '../config.js';
import { cryptoMinter, type Minter } from '../domain/campaign.js';
import { eventIdsOf } from '../infra/kafka/codec.js';
import { keepConsuming, roleConsumer } from '../infra/kafka/consumer.js';
import { sortBatch, Stops, type Parking } from '../infra/kafka/parking.js';
import { unwatched, type HealthReporter } from '../health.js';
import { logger } from '../logger.js';
import type { Timing } from '../metrics.js';
import { KafkaDecisionSink } from './kafkaSink.js';
import { PartitionWriter, type WriterShared } from './partitionWriter.js';
import { FairnessKey } from '../domain/fairness/line.js';
import type { LineReader } from './lineHeads.js';
import { AnnouncingLines, AnnouncingReplies, type ChangeFeed } from './changeFeed.js';
import type { CampaignLines, CodeSealing, RebuildBound, ReplyChannel, WipeSignal } from './ports.js';
import { CodeVault } from '../infra/codeKeys/vault.js';
import { createPrisma } from '../infra/prisma/client.js';
import { fromOffsetZero } from './rebuildBound.js';

/** The consumer's name where it parks records and stops at newer events. */
export const WRITER = 'single-writer';

const log = logger.child({ role: 'writer', component: WRITER });

/**
 * A rebuild replays a partition in fetches of up to this much: KafkaJS's 1 MB took a 100k-event
 * replay in more round trips, each a wait for the broker and then for Redis with nothing else to
 * do, and `bench:replay`'s replay(REDIS) was 8-23% faster with 4 MB in four alternating pairs. A
 * live partition's batches stay as small as what arrived within a fetch.
 */
const WRITER_FETCH = { maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 16 * 1024 * 1024 };

/**
 * The single writer of each partition, as a consumer group: the router between the group's
 * assignment and one `PartitionWriter` per owned partition. On every assignment the owned
 * partitions are settled (transactions in doubt fenced, committed positions read) before any of
 * their batches is decided; a partition taken away retires its writer.
 *
 * Redis is a projection: when it has been flushed a partition's writer replays it from offset 0,
 * placing entries again (same offsets → same places) and re-applying the decisions already in the
 * log, and only then decides anew.
 */
export class SingleWriter {
  private consumer: Consumer | null = null;
  private runner: ReturnType<typeof keepConsuming> | null = null;
  private readonly writers = new Map<number, PartitionWriter>();
  private readonly sink: KafkaDecisionSink;
  private readonly shared: WriterShared;
  private watch: NodeJS.Timeout | null = null;
  private readonly wipes: WipeSignal | undefined;
  private stopWipes: (() => Promise<void>) | null = null;
  private assignedOnce!: Promise<void>;
  /** closes the database client made for its own CodeVault */
  private ownPrisma: (() => Promise<void>) | null = null;
  /** told when batches or settling fail and when they work again (/readyz) */
  health: HealthReporter = unwatched;
  /** partitions stopped at an event of a newer version */
  readonly stops = new Stops(WRITER, () => this.health);

  constructor(
    private readonly kafka: Kafka,
    /** the Redis ordering projection's adapters (projections/redis-ordering); `changes` announces what the writer tells and applies */
    /** `wipes`, when given, wakes a partition's writer as a replay job wipes it */
    /** `readLine`, when given, lets the writer keep each campaign's Merkle line and sign heads (issue 31) */
    redis: { lines: CampaignLines; replies: ReplyChannel; changes: ChangeFeed; wipes?: WipeSignal; readLine?: LineReader },
    private readonly config: Config,
    parking: Parking,
    mint: Minter = cryptoMinter,
    /** where a rebuild may start (rebuildBound.ts); without one, at offset 0 */
    bound: RebuildBound = fromOffsetZero,
    /** the campaigns' data keys; without them, a CodeVault of its own on DATABASE_URL with CODE_KEYS */
    codes?: CodeSealing,
  ) {
    if (!codes) {
      const prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
      this.ownPrisma = () => prisma.$disconnect();
      codes = new CodeVault(prisma, config.CODE_KEYS);
    }
    this.sink = new KafkaDecisionSink(kafka, config, log, () => this.health);
    this.wipes = redis.wipes;
    this.shared = {
      sink: this.sink,
      // what it tells and applies is announced too: API processes push it to subscribed sockets
      lines: new AnnouncingLines(redis.lines, redis.changes),
      bound,
      replies: new AnnouncingReplies(redis.replies, redis.changes),
      cursor: { seek: (partition, offset) => this.seek(partition, offset) },
      parker: parking,
      mint,
      codes,
      log,
      timing: (...a) => this.timing(...a),
      stats: { batches: 0, entries: 0, winners: 0, rebuilds: 0 },
      commitEveryMs: config.WRITER_COMMIT_MS,
      fairness: redis.readLine && { key: FairnessKey.parse(config.FAIRNESS_KEY), readLine: redis.readLine },
    };
  }

  timing: Timing = () => undefined;

  /**
   * KafkaJS throws on a seek while its consumer is not running: after a broker outage a commit fails
   * and its partition seeks back while `keepConsuming` is still bringing a new consumer up (CI saw
   * the writer's process die of it in broker-restart.e2e). Nothing is lost by skipping it: the new
   * consumer joins the group, and its assignment retires these writers and settles every partition
   * anew from the committed offsets (rebuilding what Redis lost), which is where the seek would go.
   */
  private seek(partition: number, offset: bigint): void {
    try {
      this.consumer?.seek({ topic: this.topic, partition, offset: offset.toString() });
    } catch (err) {
      log.warn(
        { err, partition, offset: offset.toString() },
        'seek skipped: the consumer is not running; its next assignment settles the partition anew',
      );
    }
  }

  /** counters for /metrics */
  get stats(): WriterShared['stats'] {
    return this.shared.stats;
  }

  get topic() {
    return this.config.topics.events;
  }

  /** Partitions this member owns, once the group has assigned them. */
  get partitions(): readonly number[] {
    return [...this.writers.keys()].sort((a, b) => a - b);
  }

  /** A partition's writer, for tests and status. */
  writer(partition: number): PartitionWriter | undefined {
    return this.writers.get(partition);
  }

  async start(): Promise<void> {
    let onAssigned!: () => void;
    this.assignedOnce = new Promise((r) => (onAssigned = r));
    this.runner = keepConsuming(
      WRITER,
      async (guard) => {
        // a writer must answer within milliseconds; KafkaJS's default waits 5 s on a quiet partition
        const consumer = roleConsumer(this.kafka, this.config.groups.writer, this.config.WRITER_MAX_WAIT_MS, WRITER_FETCH);
        this.consumer = consumer;
        consumer.on(consumer.events.GROUP_JOIN, (e) => {
          const assigned = (e.payload.memberAssignment[this.topic] ?? []).slice().sort((a, b) => a - b);
          void this.assign(assigned).then(onAssigned, (err) => log.error({ err }, 'assignment check failed'));
        });
        await consumer.connect();
        await consumer.subscribe({ topic: this.topic, fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: this.config.EVENT_PARTITIONS,
          eachBatch: guard((payload) => this.onBatch(payload)),
        });
        return consumer;
      },
      { health: this.health },
    );
    await this.runner.ready;
    // a replay's wipe is rebuilt at once; the sentinel's poll below stays for a flush, and for a wipe not heard
    this.stopWipes =
      (await this.wipes
        ?.listen(
          Array.from({ length: this.config.EVENT_PARTITIONS }, (_, p) => p),
          (p) => {
            const w = this.writers.get(p);
            void w?.checkBuilt(false).catch((err) => log.warn({ err, partition: p }, 'built check failed'));
          },
        )
        .catch(
          (err: unknown) => (log.warn({ err }, 'not listening for replay wipes: the writer sees them within its 50 ms poll'), null),
        )) ?? null;
    // the sentinel every 50 ms (a replay waited up to 250 ms for its wipe to be seen: a quarter of a
    // 100k-event rebuild), the step counts and the idle tail every 250 ms as before
    let tick = 0;
    this.watch = setInterval(() => {
      const full = tick++ % 5 === 0;
      for (const w of this.writers.values()) {
        void w.checkBuilt(full).catch((err) => log.warn({ err, partition: w.partition }, 'built check failed'));
        if (full) w.commitIdleTail();
      }
    }, 50);
  }

  /** Resolves once the first assignment was settled (the writer is ready to decide). */
  ready(): Promise<void> {
    return this.assignedOnce;
  }

  /**
   * Every assignment fences anew (another member may have owned a partition in between): new
   * writers wait in Settling while the commits of the old ones end, the producers are dropped, and
   * the transactions in doubt are settled.
   */
  private async assign(assigned: number[]): Promise<void> {
    const previous = [...this.writers.values()];
    this.writers.clear();
    const fresh = assigned.map((p) => new PartitionWriter(p, this.shared));
    for (const w of fresh) this.writers.set(w.partition, w);
    this.stops.retain(assigned);
    await Promise.all(previous.map((w) => w.retire()));
    await this.sink.reset();
    const offsets = await this.sink.settle(assigned);
    await Promise.all(fresh.map((w) => w.settle(offsets.get(w.partition) ?? 0n)));
    log.info({ partitions: assigned }, 'single writer assigned');
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const w = this.writers.get(batch.partition);
    if (!w || !isRunning() || batch.messages.length === 0) return;
    const consumer = this.consumer;
    await w.onBatch(
      {
        partition: batch.partition,
        first: BigInt(batch.firstOffset() ?? '0'),
        size: batch.messages.length,
        read: (skip, { from, to }) =>
          sortBatch(
            WRITER,
            this.topic,
            batch.partition,
            from === 0 && to === batch.messages.length ? batch.messages : batch.messages.slice(from, to),
            {
              // a packed record is skipped when every event it holds was applied (each id is forgotten as it is met)
              ...(skip && {
                skip: (m) => {
                  const ids = eventIdsOf(m.headers);
                  return ids.length > 0 && ids.map((id) => skip(id)).every(Boolean);
                },
              }),
              ...(to === batch.messages.length && { lastOffset: batch.lastOffset() }),
            },
          ),
      },
      {
        isStale,
        resolve: (offset) => resolveOffset(String(offset)),
        heartbeat,
        stop: (err) => this.stops.stop(consumer, this.topic, err),
      },
    );
  }

  async stop(): Promise<void> {
    this.sink.stopping = true;
    if (this.watch) clearInterval(this.watch);
    await this.stopWipes?.();
    await this.runner?.stop();
    await Promise.all([...this.writers.values()].map((w) => w.retire()));
    await this.sink.reset();
    await this.ownPrisma?.().catch(() => undefined);
  }
}
