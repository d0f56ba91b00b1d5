import type { KafkaMessage } from 'kafkajs';
import type { Logged } from '../domain/events.js';
import type { Logger } from '../logger.js';
import { backoffMs, RepeatedErrors } from '../retrying.js';
import type { Processor } from './processor.js';

/**
 * Batches being handled at once, every partition together: each may hold a pooled connection for
 * its transaction (in the main thread the API shares the pool of 8; the read side's thread has 6).
 * Batches are handed over before they are handled in full (onBatch), so KafkaJS's own limit
 * (partitionsConsumedConcurrently) no longer bounds them.
 */
export const IN_FLIGHT = 4;

/** A counting semaphore: `take` waits for a free slot. */
export class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/** One partition as this member holds it. */
export interface Lane {
  /** where the fetched stream goes on: a batch that does not start here was fetched before a seek */
  cursor: bigint;
  /** the end of the last batch handled: [delivered, cursor) held only transaction markers or aborted records */
  delivered: bigint;
  /** processor → the next offset it needs */
  pos: Map<string, bigint>;
  /** processor → failed batches in a row, and when it may be tried again */
  failures: Map<string, { count: number; retryAt: number }>;
  /** batches and checks of one partition take turns */
  queue: Promise<void>;
  /** batches handled, so a check never acts on a checkpoint it read before one of them */
  version: number;
  /** the offset last committed to Kafka for this partition by this lane */
  committed?: bigint;
}

/** Runs `work` in the lane's turn: batches and checks of one partition take turns. */
export function inTurn<T>(lane: Lane, work: () => Promise<T>): Promise<T> {
  const run = lane.queue.then(work);
  lane.queue = run.then(
    () => undefined,
    () => undefined,
  );
  return run;
}

/**
 * The processors' side of the consumer host's lanes: which processor a batch is offered to, what
 * its answer does to the lane (moved on, moved back by a replay, failed and backed off), and where
 * the stream seeks back to for the processors that fell behind.
 */
export class LaneOffers {
  private readonly repeats = new Map<string, RepeatedErrors>();

  constructor(
    /** the host's processors, in the order they were added */
    private readonly processors: readonly Processor[],
    /** moves the partition's fetched stream to `offset` */
    private readonly seek: (partition: number, offset: bigint) => void,
    private readonly log: Logger,
  ) {}

  /** Offers one batch to each processor whose checkpoint it holds, then moves the lane past it. */
  async deliver(
    lane: Lane,
    partition: number,
    first: bigint,
    next: bigint,
    logged: readonly Logged[],
    messages: readonly KafkaMessage[],
    writing?: () => void,
  ): Promise<void> {
    for (const p of this.processors) {
      const from = lane.pos.get(p.name)!;
      // behind (waiting to be tried again, or for the seek back) or ahead of this batch
      if (from < first || from >= next) continue;
      const events = logged.filter((l) => l.offset >= from && p.canHandle(l.event));
      await this.offer(lane, p, partition, { partition, from, next, events, messages, ...(writing && { writing }) });
    }
    lane.cursor = next;
    lane.delivered = next;
    lane.version++;
  }

  /** Hands one processor its part; its failure is its own (reported, backed off), never the others'. */
  async offer(lane: Lane, p: Processor, partition: number, batch: Parameters<Processor['handle']>[0]): Promise<void> {
    try {
      const r = await p.handle(batch);
      if (r.kind === 'moved') this.moved(lane, p, partition, r.to);
      else lane.pos.set(p.name, batch.next);
      const failed = lane.failures.get(p.name);
      if (failed) {
        lane.failures.delete(p.name);
        p.health.ok(partition);
        this.repeatsOf(p).recovered('batches succeed again', { partition });
      }
    } catch (err) {
      const count = (lane.failures.get(p.name)?.count ?? 0) + 1;
      const wait = backoffMs(count);
      lane.failures.set(p.name, { count, retryAt: Date.now() + wait });
      p.health.failing(err, partition);
      this.repeatsOf(p).error(err, 'batch failed: retrying', { partition, attempt: count, retryInMs: wait });
    }
    p.observe?.(partition, { next: lane.pos.get(p.name)! });
  }

  moved(lane: Lane, p: Processor, partition: number, to: bigint): void {
    const from = lane.pos.get(p.name)!;
    if (from === to) return;
    this.log.info({ processor: p.name, partition, from: from.toString(), to: to.toString() }, 'checkpoint moved (replay): seeking to it');
    lane.pos.set(p.name, to);
    p.moved?.(partition, from, to);
  }

  /** Seeks back to the lowest processor that is behind the stream and may be offered it again. */
  catchUp(lane: Lane, partition: number): void {
    const now = Date.now();
    let low: bigint | null = null;
    for (const [name, pos] of lane.pos) {
      const failed = lane.failures.get(name);
      if (pos >= lane.cursor || (failed && failed.retryAt > now)) continue;
      if (low === null || pos < low) low = pos;
    }
    if (low === null) return;
    lane.cursor = low;
    lane.delivered = low;
    this.seek(partition, low);
  }

  /**
   * A check of an idle lane, in its turn: a checkpoint moved under it (`read.rows`, read for the
   * check, unless the lane handled a batch since: then it is left to the next check) means a replay
   * rewound it; a tail of transaction markers the processors' checkpoints should move past (so
   * they reach the high watermark: replay progress, lag); a failed processor whose backoff is over
   * is sought back to, unless the partition is `stopped` (it stays paused at its record until a
   * build that knows it runs).
   */
  async recheck(
    lane: Lane,
    partition: number,
    read: { rows: ReadonlyMap<Processor, Map<number, bigint>>; version: number },
    stopped: () => boolean,
  ): Promise<void> {
    if (lane.version === read.version) for (const [p, row] of read.rows) this.moved(lane, p, partition, row.get(partition) ?? 0n);
    for (const p of this.processors) {
      const from = lane.pos.get(p.name)!;
      if (from !== lane.delivered || lane.cursor <= from || lane.failures.has(p.name)) continue;
      await this.offer(lane, p, partition, { partition, from, next: lane.cursor, events: [], messages: [] });
    }
    if (lane.delivered < lane.cursor && [...lane.pos.values()].every((o) => o >= lane.cursor)) lane.delivered = lane.cursor;
    if (!stopped()) this.catchUp(lane, partition);
  }

  forgetFailures(lane: Lane, partition: number): void {
    for (const name of lane.failures.keys()) this.processors.find((x) => x.name === name)?.health.ok(partition);
    lane.failures.clear();
  }

  private repeatsOf(p: Processor): RepeatedErrors {
    let r = this.repeats.get(p.name);
    if (!r) this.repeats.set(p.name, (r = new RepeatedErrors(this.log.child({ processor: p.name }))));
    return r;
  }
}
