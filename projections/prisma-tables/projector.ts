import { parkedRecord, type Parking, type ParkedRecord } from '../../src/infra/kafka/parking.js';
import type { Handled, Processor, ProcessorBatch } from '../../src/read-side/processor.js';
import type { Prisma, PrismaClient } from '../../src/infra/prisma/client.js';
import { unwatched, type HealthReporter } from '../../src/health.js';
import { compareIdentity, mismatchOf, type LogIdentity } from '../../src/infra/kafka/logIdentity.js';
import { logger } from '../../src/logger.js';
import type { Lag } from '../lag.js';
import { listenForRewinds } from './rewinds.js';
import { applyBatch } from './apply.js';
import { lockCheckpoint, PRISMA_PROJECTION, saveCheckpoint } from './checkpoint.js';
import { errorLine, isDataError, sqlStateOf } from './sqlErrors.js';

export { PRISMA_PROJECTION, rewindPrismaProjection } from './checkpoint.js';
export { applyBatch, type ApplyStats } from './apply.js';
export { errorLine, isDataError } from './sqlErrors.js';

const log = logger.child({ role: 'projector', projection: PRISMA_PROJECTION });

type Tx = Prisma.TransactionClient;

/**
 * The Prisma tables processor: campaigns, entries, winners and gifticons in Postgres.
 *
 * Each batch the consumer host offers is one interactive transaction: lock the partition's
 * checkpoint row, plan the batch against what the tables hold, write it with one INSERT per table
 * and one UPDATE per campaign (not per event), and store the partition's next offset in that same
 * transaction. A crash before the commit leaves nothing; after it, the checkpoint says where to go on.
 *
 * THE CHECKPOINT ROW IS THE TRUTH, and that is how a replay rewinds the projection:
 * `rewindPrismaProjection` deletes a campaign's rows (or all) and sets the checkpoint(s) back to 0 in
 * one transaction. A batch is applied only when it starts at the row's next_offset; any other batch
 * is dropped (`moved`) and the host seeks back to the row, so a rewind is noticed on the next batch,
 * and by the host's check (4 a second) on an idle partition. Since the checkpoint row is locked
 * first, a zombie member that still holds a partition after a rebalance finds the row moved and
 * drops its batch: no row is written twice. Re-applying another campaign's events after a rewind
 * changes nothing (users already in `entries` are skipped, inserts skip duplicates, counters grow
 * only by what was inserted).
 */
export class PrismaTables implements Processor {
  readonly name = PRISMA_PROJECTION;
  readonly rewindable = true;
  readonly signalsWriting = true;
  readonly stats = { batches: 0, events: 0, entries: 0, dropped: 0, rewinds: 0, lookups: 0, retries: 0 };

  constructor(
    private readonly prisma: PrismaClient,
    private readonly topic: string,
    private readonly lag: Lag,
    private readonly parking: Parking,
    /** told when batches fail and when they work again (/readyz) */
    readonly health: HealthReporter = unwatched,
    /** where rewinds are heard (`listenForRewinds`); without it the host's checks notice them */
    private readonly databaseUrl: string | null = null,
    /** the log this process follows: recorded with the first write, and every batch is refused when the tables were built from another */
    private readonly logIdentity: LogIdentity | null = null,
  ) {}

  canHandle(): boolean {
    return true;
  }

  async watchRewinds(heard: () => void): Promise<() => Promise<void>> {
    if (this.databaseUrl === null) return async () => undefined;
    return listenForRewinds(this.databaseUrl, this.topic, heard);
  }

  /**
   * Created at 0 when missing, so the first batch finds a row to lock (a row created here is not
   * yet seen by the SELECT of the same statement: it reads as missing, which is 0 too). One raw
   * statement: the host reads these four times a second (a replay's rewind is noticed that way),
   * and two Prisma model queries each time were a good part of the read side's idle CPU.
   */
  async checkpoints(partitions: readonly number[]): Promise<Map<number, bigint>> {
    const rows = await this.prisma.$queryRaw<{ partition: number; next_offset: bigint | number | string }[]>`
      WITH created AS (
        INSERT INTO projection_checkpoints (projection, topic, partition, next_offset, updated_at)
        SELECT ${PRISMA_PROJECTION}, ${this.topic}, p, 0, ${new Date()} FROM unnest(${[...partitions]}::int[]) AS p
        ON CONFLICT DO NOTHING)
      SELECT partition, next_offset FROM projection_checkpoints
       WHERE projection = ${PRISMA_PROJECTION} AND topic = ${this.topic} AND partition = ANY(${[...partitions]}::int[])`;
    return new Map(rows.map((r) => [Number(r.partition), BigInt(r.next_offset)]));
  }

  assigned(partitions: readonly number[]): void {
    this.lag.retain(partitions);
  }

  observe(partition: number, at: { high?: string; next?: bigint }): void {
    this.lag.observe(partition, at);
  }

  moved(): void {
    this.stats.rewinds++;
  }

  /**
   * The batch one event at a time, each behind a savepoint: an event that breaks a rule of the
   * tables is rolled back alone and parked as this processor's. Returns the entries written.
   */
  private async applyEach(tx: Tx, batch: ProcessorBatch, unapplied: ParkedRecord[]): Promise<number> {
    let entries = 0;
    for (const l of batch.events) {
      await tx.$executeRaw`SAVEPOINT projector_event`;
      try {
        entries += await applyBatch(tx, [l], this.stats);
        await tx.$executeRaw`RELEASE SAVEPOINT projector_event`;
      } catch (err) {
        if (!isDataError(err)) throw err;
        await tx.$executeRaw`ROLLBACK TO SAVEPOINT projector_event`;
        const m = batch.messages.find((x) => x.offset === String(l.offset))!;
        unapplied.push(parkedRecord(PRISMA_PROJECTION, 'unapplied', errorLine(err), this.topic, l.partition, m));
      }
    }
    return entries;
  }

  async handle(batch: ProcessorBatch): Promise<Handled> {
    const { partition: p, from, next, events } = batch;
    const apply = (isolate: boolean) =>
      this.prisma.$transaction(
        async (tx) => {
          const { next: row, recorded } = await lockCheckpoint(tx, this.topic, p, this.logIdentity);
          if (this.logIdentity && recorded) {
            const verdict = compareIdentity(recorded, this.logIdentity);
            if (verdict.kind === 'other') throw mismatchOf('the Postgres read model', verdict);
          }
          if (row !== from) return { kind: 'moved' as const, to: row };
          const unapplied: ParkedRecord[] = [];
          const entries = isolate ? await this.applyEach(tx, batch, unapplied) : await applyBatch(tx, events, this.stats, batch.writing);
          // parked inside the transaction: when the send fails, the rows and the checkpoint roll back with it
          await this.parking.park(unapplied);
          await saveCheckpoint(tx, this.topic, p, next);
          return { kind: 'applied' as const, entries };
        },
        // hot path: one transaction per fetched batch (~3k events at 1 MB per fetch)
        { timeout: 60_000, maxWait: 10_000 },
      );
    // A batch that breaks a rule of the tables (a value out of range, a constraint) is tried again
    // event by event: the events that still fail are parked, the others are written. Anything
    // else (Postgres away) is thrown, and the host offers the batch again after a backoff.
    const r = await apply(false).catch((err: unknown) => {
      if (!isDataError(err)) throw err;
      log.warn({ partition: p, sqlState: sqlStateOf(err) }, 'a batch broke a rule of the tables: applying it event by event');
      return apply(true);
    });
    if (r.kind === 'moved') {
      this.stats.dropped++;
      return r;
    }
    if (events.length > 0) this.stats.batches++;
    this.stats.events += events.length;
    this.stats.entries += r.entries;
    return { kind: 'handled' };
  }
}
