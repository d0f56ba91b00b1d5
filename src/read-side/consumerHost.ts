import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Config } from '../config.js';
import type { HealthReporter } from '../health.js';
import { logger } from '../logger.js';
import { RepeatedErrors } from '../retrying.js';
import { keepConsuming, roleConsumer } from '../infra/kafka/consumer.js';
import { sortBatch, Stops, type Parking } from '../infra/kafka/parking.js';
import { IN_FLIGHT, inTurn, LaneOffers, Slots, type Lane } from './hostLanes.js';
import type { Processor } from './processor.js';

const log = logger.child({ component: 'consumer-host' });

/**
 * A consumer host's group: named after its processors, so processes running the same ones share
 * the partitions and processes running other ones each read the whole log.
 */
export function readSideGroup(config: Pick<Config, 'groups'>, processors: readonly string[]): string {
  return `${config.groups.readSide}.${[...processors].sort().join('+')}`;
}

/** Of some group ids, those of consumer hosts that run `processor`. */
export function readSideGroupsWith(config: Pick<Config, 'groups'>, processor: string, groupIds: readonly string[]): string[] {
  const stem = `${config.groups.readSide}.`;
  return groupIds.filter((g) => g.startsWith(stem) && g.slice(stem.length).split('+').includes(processor));
}

/**
 * Under a burst a fetch waits for this much of the log (or for the fetch's maxWait, 200 ms, on a
 * quiet log): with 1 byte each small fetch became a Prisma transaction (ten statements, each a
 * socket write) and an offset commit. At a burst's ~200 bytes per entry, 64 KB is some 300
 * entries with their decisions; a quiet partition's last records are applied within the maxWait.
 */
const FETCH_MIN_BYTES = 64 * 1024;

/**
 * A catching-up read side (a replay, a restart behind a burst) takes fetches of up to 1 MB per
 * partition: ~16k of the API's entries with snappy, each batch one transaction of the Prisma
 * tables. Batches are pipelined (onBatch): the next is fetched and decoded while Postgres inserts
 * the previous one's entries (the processor says when: `writing`), so a catch-up wants several of
 * them. replay(DATABASE) of 100k entries, five-run medians in alternating pairs: 75.1/79.0k
 * events/s at 1 MB, 79.0/75.5k at 512 KB, 63.2/64.3k at 4 MB (two batches: little to overlap), with
 * Postgres at 6.9-7.5 µs per event in all three. A live partition's batches stay as small as what
 * arrived.
 */
const READ_SIDE_FETCH = { maxBytesPerPartition: 1024 * 1024, maxBytes: 32 * 1024 * 1024, minBytes: FETCH_MIN_BYTES };

/**
 * One consumer per process for the read side: every processor (Prisma tables, archive, triggers)
 * is fed from one fetch and one decode of the events topic. Records that are not events are parked
 * here once, and a newer event version stops the partition here once, for every processor.
 *
 * Each processor keeps its own checkpoint, so the host reads from the lowest one and lets each
 * skip what it has: on assignment it seeks to the minimum; when a processor finds its checkpoint
 * moved (a replay rewound it) or fails a batch, it falls behind, and the host seeks back to it
 * (at once for a rewind, after a backoff for a failure) while the others go on with the log. A
 * failing processor therefore never holds the others up, and /readyz names only it.
 *
 * The group id names the processors (`readSideGroup`). Kafka's committed offset is only where a new
 * member's first fetch begins; the processors' checkpoints are the truth.
 */
export class ConsumerHost {
  private readonly processors: Processor[] = [];
  private lanes = new Map<number, Lane>();
  private readonly opening = new Map<number, Promise<Lane | null>>();
  private readonly slots = new Slots(IN_FLIGHT);
  private readonly offers = new LaneOffers(
    this.processors,
    (partition, offset) => this.consumer?.seek({ topic: this.topic, partition, offset: offset.toString() }),
    log,
  );
  /** the batches of the previous assignment still in flight: a new lane waits for them before reading its checkpoints */
  private settled: Promise<unknown> = Promise.resolve();
  private runner: ReturnType<typeof keepConsuming> | null = null;
  private consumer: Consumer | null = null;
  private admin: Admin | null = null;
  private assigned: number[] = [];
  private joined = false;
  private watch: NodeJS.Timeout | null = null;
  /** stops the processors' rewind watches (watchRewinds) */
  private readonly unwatch: (() => Promise<void>)[] = [];
  private endsReadAt = 0;
  /** partitions paused because a checkpoint lies beyond their end (`withinLog`) */
  private readonly beyond = new Set<number>();
  /** every processor's reporter: what stops or fails the whole host fails each of them */
  private readonly everyone: HealthReporter = {
    failing: (err, part) => this.processors.forEach((p) => p.health.failing(err, part)),
    ok: (part) => this.processors.forEach((p) => p.health.ok(part)),
  };
  readonly stops = new Stops('read-side', () => this.everyone);

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Pick<Config, 'topics' | 'groups'>,
    private readonly parking: Parking,
    private readonly opts: { maxWaitTimeInMs?: number; checkEveryMs?: number } = {},
  ) {}

  get topic(): string {
    return this.config.topics.events;
  }

  get groupId(): string {
    return readSideGroup(
      this.config,
      this.processors.map((p) => p.name),
    );
  }

  /** Before `start`: the roles of the process say which processors it runs. */
  add(processor: Processor): void {
    if (this.runner) throw new Error(`consumer host already started: ${processor.name} comes too late`);
    this.processors.push(processor);
  }

  get size(): number {
    return this.processors.length;
  }

  ready(): boolean {
    return this.joined && this.stops.size === 0;
  }

  async start(): Promise<void> {
    if (this.processors.length === 0) return;
    this.admin = this.kafka.admin();
    await this.admin.connect();
    // a fresh consumer after a non-retriable crash (a long broker outage); it starts from the checkpoints again
    this.runner = keepConsuming(
      'consumer-host',
      async (guard) => {
        const consumer = roleConsumer(this.kafka, this.groupId, this.opts.maxWaitTimeInMs ?? 200, READ_SIDE_FETCH);
        this.consumer = consumer;
        consumer.on(consumer.events.GROUP_JOIN, (e) =>
          this.joinedWith((e.payload.memberAssignment[this.topic] ?? []).slice().sort((a, b) => a - b)),
        );
        // batches holding only transaction markers or aborted records never reach eachBatch, but move the stream
        consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
          const { topic, partition, batchSize, firstOffset, lastOffset } = e.payload;
          const lane = this.lanes.get(partition);
          if (topic === this.topic && batchSize === 0 && firstOffset !== null && lane?.cursor === BigInt(firstOffset))
            lane.cursor = BigInt(lastOffset) + 1n;
        });
        await consumer.connect();
        await consumer.subscribe({ topic: this.topic, fromBeginning: true });
        await consumer.run({
          // committed by hand once a batch is handled (commit): eachBatch returns before that
          autoCommit: false,
          // resolved by hand: the stream moves past what every processor was offered, and not past a stop
          eachBatchAutoResolve: false,
          // each partition holds a pooled connection for its transaction; a host beside the API shares its pool (8)
          partitionsConsumedConcurrently: 4,
          eachBatch: guard((payload) => this.onBatch(payload)),
        });
        return consumer;
      },
      { health: this.everyone },
    );
    await this.runner.ready;
    const checkFailed = new RepeatedErrors(log, 'warn');
    let checking = false;
    let again = false;
    /** `heard`: a processor heard of a rewind: a check under way may have read the checkpoints before it, so one runs after it */
    const checkNow = (heard = false): void => {
      if (!this.watch) return;
      // a slow check (Postgres busy) is not stacked on
      if (checking) {
        again ||= heard;
        return;
      }
      checking = true;
      void this.check()
        .catch((err) => checkFailed.error(err, 'checkpoint check failed'))
        .finally(() => {
          checking = false;
          if (again) {
            again = false;
            checkNow();
          }
        });
    };
    // a replay's rewind is noticed within this on an idle partition where it is not heard at once (watchRewinds)
    this.watch = setInterval(() => checkNow(), this.opts.checkEveryMs ?? 250);
    for (const p of this.processors) {
      if (!p.watchRewinds) continue;
      try {
        this.unwatch.push(await p.watchRewinds(() => checkNow(true)));
      } catch (err) {
        log.warn({ err, processor: p.name }, 'rewinds are not heard as they happen: the checkpoint check notices them');
      }
    }
  }

  async stop(): Promise<void> {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    await Promise.all(this.unwatch.splice(0).map((stop) => stop()));
    // batches handed over before the stop finish first: their transactions and commits need the clients
    await this.drain();
    await this.runner?.stop();
    await this.drain();
    await this.admin?.disconnect();
    this.runner = null;
    this.consumer = null;
    this.admin = null;
  }

  private async drain(): Promise<void> {
    await Promise.all([this.settled, ...[...this.lanes.values()].map((l) => l.queue)]);
  }

  private joinedWith(partitions: number[]): void {
    this.assigned = partitions;
    this.stops.retain(partitions);
    // a partition now another member's is that member's to find beyond its end
    for (const p of [...this.beyond]) if (!partitions.includes(p) && this.beyond.delete(p)) this.everyone.ok(`log:${p}`);
    // every (re)join starts each assigned partition from the checkpoints again: they are the truth
    for (const [partition, lane] of this.lanes) this.offers.forgetFailures(lane, partition);
    this.settled = Promise.all([this.settled, ...[...this.lanes.values()].map((l) => l.queue)]);
    this.lanes = new Map();
    this.opening.clear();
    for (const p of this.processors) p.assigned?.(partitions);
    void Promise.all(partitions.map((p) => this.lane(p))).then(
      () => (this.joined = true),
      (err) => {
        log.warn({ err }, 'could not read the checkpoints of the assigned partitions: the first batch will');
        this.joined = true;
      },
    );
  }

  /** The partition's lane, opened from the processors' checkpoints (seeking to the lowest) when new. */
  private lane(partition: number, fetchedFrom?: bigint): Promise<Lane | null> {
    const open = this.lanes.get(partition);
    if (open) return Promise.resolve(open);
    const pending = this.opening.get(partition);
    if (pending) return pending;
    const lanes = this.lanes;
    const opening = (async () => {
      // as KafkaJS did when it waited for eachBatch before a rejoin: nothing of the new assignment
      // starts, not even reading its checkpoints, while a batch of the old one is being handled
      await this.settled;
      const pos = new Map<string, bigint>();
      for (const p of this.processors) pos.set(p.name, (await p.checkpoints([partition])).get(partition) ?? 0n);
      // a rejoin while reading: the new assignment opens its own
      if (this.lanes !== lanes || !this.assigned.includes(partition)) return null;
      if (!(await this.withinLog(partition, pos))) return null;
      const low = [...pos.values()].reduce((a, b) => (b < a ? b : a));
      const lane: Lane = { cursor: low, delivered: low, pos, failures: new Map(), queue: Promise.resolve(), version: 0 };
      lanes.set(partition, lane);
      if (fetchedFrom !== low) this.consumer?.seek({ topic: this.topic, partition, offset: low.toString() });
      for (const p of this.processors) p.observe?.(partition, { next: pos.get(p.name)! });
      log.info(
        { partition, group: this.groupId, from: Object.fromEntries([...pos].map(([n, o]) => [n, o.toString()])) },
        'partition assigned',
      );
      return lane;
    })().finally(() => {
      if (this.opening.get(partition) === opening) this.opening.delete(partition);
    });
    this.opening.set(partition, opening);
    return opening;
  }

  /**
   * A checkpoint beyond its partition's end was kept of another log (the topic was deleted and
   * created again under this process) or of a tail the log lost: reading on from the log's start
   * would skip every record below it in silence. The partition is paused and failing (/readyz
   * names `npm run adopt-log`) until the checkpoints are back within the log; every check looks again.
   */
  private async withinLog(partition: number, pos: ReadonlyMap<string, bigint>): Promise<boolean> {
    const part = `log:${partition}`;
    const end = BigInt((await this.admin?.fetchTopicOffsets(this.topic))?.find((o) => o.partition === partition)?.high ?? '-1');
    const ahead = end < 0n ? [] : [...pos].filter(([, o]) => o > end);
    if (ahead.length === 0) {
      if (this.beyond.delete(partition)) {
        this.everyone.ok(part);
        this.consumer?.resume([{ topic: this.topic, partitions: [partition] }]);
      }
      return true;
    }
    const [name, at] = ahead[0]!;
    const reason =
      `run \`npm run adopt-log\`: the ${name} checkpoint of partition ${partition} is at offset ${at}, beyond the log's end (${end}): ` +
      'the log was replaced or lost its tail';
    if (!this.beyond.has(partition)) log.error({ partition, processor: name, checkpoint: at.toString(), end: end.toString() }, reason);
    this.beyond.add(partition);
    this.everyone.failing(new Error(reason), part);
    this.consumer?.pause([{ topic: this.topic, partitions: [partition] }]);
    return false;
  }

  /**
   * One fetched batch. Pipelined: the batch is decoded at once, waits for the partition's previous
   * batch to be handled, and is then handed to the processors; eachBatch returns as soon as it is
   * handed over (its offset resolved, so KafkaJS fetches the next batch): at once, or, when a
   * processor `signalsWriting`, once it waits on its store for the batch's main write. The next
   * batch is then fetched and decoded while Postgres applies this one, on the other core.
   *
   * Order and exactly-once are the lane's: its queue lets one batch of a partition be handled at a
   * time, in fetch order, and a batch is offered only when it starts at the lane's cursor, which
   * moves only once the previous batch is handled (a failure or a moved checkpoint seeks back, and
   * a batch fetched meanwhile no longer starts at the cursor: it is dropped). Kafka's committed
   * offset (autoCommit is off) is committed by hand once the batch is handled: it never passes a
   * batch still in flight.
   */
  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const partition = batch.partition;
    const firstOffset = batch.firstOffset();
    if (!isRunning() || isStale() || firstOffset === null) return;
    const first = BigInt(firstOffset);
    const lane = await this.lane(partition, first);
    if (!lane) return;
    // decoded before the turn: this is what overlaps the previous batch's transaction
    const sorted = sortBatch(this.processors[0]!.name, this.topic, partition, batch.messages, { lastOffset: batch.lastOffset() });
    const next = sorted.last === null ? first : sorted.last + 1n;
    let handedOver!: () => void;
    const handed = new Promise<void>((r) => (handedOver = r));
    const handled = inTurn(lane, async () => {
      if (first !== lane.cursor) {
        // fetched from elsewhere: before a seek of ours (which comes next), or by a seek that a
        // lane opened at the group's join issued while a batch from the same place was being
        // handled (the stream then went back behind the cursor, and only batches from the cursor
        // are offered). Seeking to the cursor again puts the stream where the lane is, in both cases.
        this.consumer?.seek({ topic: this.topic, partition, offset: lane.cursor.toString() });
        return;
      }
      for (const p of this.processors) p.observe?.(partition, { high: batch.highWatermark });
      await this.parking.park(sorted.parked);
      await this.slots.take();
      try {
        if (sorted.stop) {
          await this.offers.deliver(lane, partition, first, next, sorted.logged, batch.messages);
          if (sorted.last !== null) resolveOffset(String(sorted.last));
          this.stops.stop(this.consumer, this.topic, sorted.stop);
        } else {
          // the stream goes on (the next fetch starts past this batch) while the processors work;
          // the lane's turn is held until the batch is handled, but eachBatch need not wait. A
          // stop (above) pauses the partition before eachBatch returns: nothing past it is fetched.
          if (sorted.last !== null) resolveOffset(String(sorted.last));
          // Handed over once a processor waits on its store for the batch's main write (`writing`),
          // else at once: the next fetch's decoding (a block of the main thread, ~100 ms for 16k
          // entries) then runs while Postgres inserts, not while the transaction opens and locks.
          const work = this.offers.deliver(lane, partition, first, next, sorted.logged, batch.messages, handedOver);
          if (!this.processors.some((p) => p.signalsWriting)) handedOver();
          await work;
          handedOver();
          // a rejoin while the batch was in flight gave the partition a new lane: this one is done
          if (this.lanes.get(partition) === lane) this.offers.catchUp(lane, partition);
        }
      } finally {
        this.slots.give();
      }
      if (this.lanes.get(partition) === lane) await this.commit(partition, lane);
      await heartbeat().catch(() => undefined);
    });
    // eachBatch returns when the batch is handed over (or dropped, or stopped)
    await Promise.race([handled, handed]);
  }

  /** Kafka's committed offset: where a new member's first fetch begins, never past a processor's checkpoint. */
  private async commit(partition: number, lane: Lane): Promise<void> {
    const low = [...lane.pos.values()].reduce((a, b) => (b < a ? b : a));
    if (lane.committed !== undefined && low <= lane.committed) return;
    try {
      await this.consumer?.commitOffsets([{ topic: this.topic, partition, offset: low.toString() }]);
      lane.committed = low;
    } catch (err) {
      // a rebalance or a stop took the partition: the next member starts from the checkpoints anyway
      log.debug({ err, partition }, 'offset commit skipped');
    }
  }

  /**
   * Every check (4 a second), per idle partition: a checkpoint moved under it (a replay rewound it); a tail of
   * transaction markers the processors' checkpoints should move past (so they reach the high
   * watermark: replay progress, lag); a failed processor whose backoff is over; and the lag.
   */
  private async check(): Promise<void> {
    const partitions = this.assigned;
    const lanes = new Map<number, { lane: Lane; version: number }>();
    for (const partition of partitions) {
      const lane = await this.lane(partition);
      if (lane) lanes.set(partition, { lane, version: lane.version });
    }
    // one read per processor for every partition
    const rows = new Map<Processor, Map<number, bigint>>();
    if (lanes.size > 0) for (const p of this.processors) if (p.rewindable) rows.set(p, await p.checkpoints([...lanes.keys()]));
    for (const [partition, { lane, version }] of lanes) {
      await inTurn(lane, () => this.offers.recheck(lane, partition, { rows, version }, () => this.stops.has(partition)));
    }
    // the log's end for lag, once a second whatever the checks' pace
    if (this.admin && partitions.length > 0 && Date.now() - this.endsReadAt >= 1000) {
      this.endsReadAt = Date.now();
      for (const o of await this.admin.fetchTopicOffsets(this.topic)) {
        if (partitions.includes(o.partition)) for (const p of this.processors) p.observe?.(o.partition, { high: o.high });
      }
    }
  }
}
