import type { Logged } from '../../src/domain/events.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { parkedRecord, type Parking, type ParkedRecord } from '../../src/infra/kafka/parking.js';
import type { Handled, Processor, ProcessorBatch } from '../../src/read-side/processor.js';
import type { Prisma, PrismaClient } from '../../src/infra/prisma/client.js';
import { unwatched, type HealthReporter } from '../../src/health.js';
import { compareIdentity, mismatchOf, type LogIdentity } from '../../src/infra/kafka/logIdentity.js';
import { logger } from '../../src/logger.js';
import type { Lag } from '../lag.js';
import { listenForRewinds, REWIND_CHANNEL } from './rewinds.js';
import { needsOf, planBatch, usersOf, type BatchNeeds, type EntryRow, type KnownCampaign, type Plan } from './plan.js';
import { writeHeads } from './heads.js';

/** The projection's name in `projection_checkpoints`. */
export const PRISMA_PROJECTION = 'prisma-tables';

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

const UNIQUE_VIOLATION = '23505';

/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation): retrying as is cannot help. */
function sqlStateOf(err: unknown): string | null {
  const e = err as { meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } }; code?: unknown };
  const code = e?.meta?.driverAdapterError?.cause?.originalCode ?? e?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

/** The database's own message, without Prisma's invocation text. */
export function errorLine(err: unknown): string {
  const cause = (err as { meta?: { driverAdapterError?: { cause?: { originalMessage?: unknown } } } })?.meta?.driverAdapterError?.cause;
  const state = sqlStateOf(err);
  const message = typeof cause?.originalMessage === 'string' ? cause.originalMessage : (err as Error).message;
  return state ? `${state}: ${message}` : message;
}

export function isDataError(err: unknown): boolean {
  const state = sqlStateOf(err);
  return state !== null && (state.startsWith('22') || state.startsWith('23'));
}

/**
 * Locks the partition's checkpoint row, and in the same statement (one round trip less per batch)
 * lets the commit not wait for the WAL flush. Safe here, and only here: the checkpoint is in the
 * same transaction as the rows, so a Postgres crash can lose a tail of committed batches only
 * together with their checkpoint, and the projector applies them again from the log. It takes the
 * flush (2-7 ms on this machine under load) off every batch: it was most of a small batch's commit.
 * set_config(…, true) is SET LOCAL; it is outside the row's subquery so that it runs when the row
 * is missing too.
 *
 * The same statement records the log this process follows when the tables have recorded none
 * (log_identities: the first write adopts it, in its own transaction), and reads the one recorded
 * before: the statement's own insert is not seen by its SELECT, so `recorded` is null then.
 */
async function lockCheckpoint(
  tx: Tx,
  topic: string,
  partition: number,
  identity: LogIdentity | null,
): Promise<{ next: bigint; recorded: LogIdentity | null }> {
  type Row = {
    next_offset: bigint | number | string | null;
    cluster_id: string | null;
    topic: string | null;
    partitions: number | null;
    log_id: string | null;
  };
  const rows = identity
    ? await tx.$queryRaw<Row[]>`
        WITH adopted AS (
          INSERT INTO log_identities (projection, cluster_id, topic, partitions, log_id, recorded_at)
          VALUES (${PRISMA_PROJECTION}, ${identity.clusterId}, ${identity.topic}, ${identity.partitions}, ${identity.logId}, ${new Date()})
          ON CONFLICT (projection) DO NOTHING)
        SELECT set_config('synchronous_commit', 'off', true) AS relaxed,
               (SELECT next_offset FROM projection_checkpoints
                 WHERE projection = ${PRISMA_PROJECTION} AND topic = ${topic} AND partition = ${partition}
                   FOR UPDATE) AS next_offset,
               i.cluster_id, i.topic, i.partitions, i.log_id
          FROM (SELECT 1) AS one LEFT JOIN log_identities i ON i.projection = ${PRISMA_PROJECTION}`
    : await tx.$queryRaw<Row[]>`
        SELECT set_config('synchronous_commit', 'off', true) AS relaxed,
               (SELECT next_offset FROM projection_checkpoints
                 WHERE projection = ${PRISMA_PROJECTION} AND topic = ${topic} AND partition = ${partition}
                   FOR UPDATE) AS next_offset,
               NULL::text AS cluster_id, NULL::text AS topic, NULL::int AS partitions, NULL::text AS log_id`;
  const r = rows[0];
  const next = r?.next_offset;
  const recorded =
    r?.cluster_id && r.topic !== null && r.partitions !== null
      ? { clusterId: r.cluster_id, topic: r.topic, partitions: Number(r.partitions), logId: r.log_id }
      : null;
  return { next: next === null || next === undefined ? 0n : BigInt(next), recorded };
}

async function saveCheckpoint(tx: Tx, topic: string, partition: number, nextOffset: bigint): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO projection_checkpoints (projection, topic, partition, next_offset, updated_at)
    VALUES (${PRISMA_PROJECTION}, ${topic}, ${partition}, ${nextOffset}, ${new Date()})
    ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at`;
}

/** How a batch found the users it had to skip (tests and the processor's stats read these). */
export interface ApplyStats {
  /** batches that looked up which of their users the tables already hold */
  lookups: number;
  /** batches written without that lookup, refused by the tables (a user's second entry), and written again with it */
  retries: number;
}

/**
 * Reads what the batch needs, plans it and writes the plan. Returns the entries written.
 *
 * Hot path: the rows of a batch go in as one INSERT … SELECT FROM json_to_recordset per table
 * (one JSON parameter, see rowsJson), and the users already placed are found with one join:
 * Prisma's createMany took 0.7–1.8 s for 3,000 entries on a 2-core machine (its query compiler
 * expands every row into parameters), unnest 0.2–0.4 s; `in: [3,000 users]` 110 ms.
 *
 * That join is skipped for a campaign whose entries all lie before the batch's first entry of it
 * (its entry at the last position, one index probe, is older): the log's next entries, as in a
 * burst or a replay after its first batch. Only a user's second entry can then name a placed user,
 * and the primary key refuses it: the batch is rolled back to a savepoint and written again with
 * the join. A batch that applies entries again (another campaign of the partition replayed) has
 * them at or before the campaign's last entry, and joins at once.
 */
export async function applyBatch(
  tx: Tx,
  logged: readonly Logged[],
  stats: ApplyStats = { lookups: 0, retries: 0 },
  writing?: () => void,
): Promise<number> {
  if (logged.length === 0) return 0;
  const needs = needsOf(logged);
  const rows = await tx.campaign.findMany({
    where: { id: { in: needs.campaignIds } },
    select: { id: true, stock: true, opensAt: true, closesAt: true, closedAt: true, entrants: true },
  });
  const campaigns = new Map<string, KnownCampaign>(
    rows.map((r) => [
      r.id,
      {
        terms: { stock: r.stock, opensAt: r.opensAt.getTime(), closesAt: r.closesAt.getTime(), closedAt: r.closedAt?.getTime() ?? null },
        entrants: r.entrants,
      },
    ]),
  );
  // a campaign with no entrant yet (created in this batch, or just rewound) has no user to find
  const placedBefore = new Set(needs.campaignIds.filter((id) => (campaigns.get(id)?.entrants ?? 0) > 0 && needs.firstEntry.has(id)));
  const ahead = await entriesAhead(tx, needs, campaigns, placedBefore);
  if (ahead.size > 0) {
    await tx.$executeRaw`SAVEPOINT projector_ahead`;
    try {
      // released with the transaction's commit
      return await planAndWrite(tx, logged, campaigns, new Set([...placedBefore].filter((id) => !ahead.has(id))), stats, writing);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      await tx.$executeRaw`ROLLBACK TO SAVEPOINT projector_ahead`;
      stats.retries++;
    }
  }
  return planAndWrite(tx, logged, campaigns, placedBefore, stats, writing);
}

async function planAndWrite(
  tx: Tx,
  logged: readonly Logged[],
  campaigns: ReadonlyMap<string, KnownCampaign>,
  lookUp: ReadonlySet<string>,
  stats: ApplyStats,
  writing?: () => void,
): Promise<number> {
  if (lookUp.size > 0) stats.lookups++;
  const plan = planBatch(logged, { campaigns, placed: await placedUsers(tx, usersOf(logged, lookUp)) });
  await writePlan(tx, plan, writing);
  return plan.entries.length;
}

const isUniqueViolation = (err: unknown) =>
  sqlStateOf(err) === UNIQUE_VIOLATION || sqlStateOf((err as { cause?: unknown })?.cause) === UNIQUE_VIOLATION;

/**
 * Of the campaigns with entries, those whose entry at the last position (one probe of the
 * (campaign, position) index each) lies before the batch's first entry of theirs.
 */
async function entriesAhead(
  tx: Tx,
  needs: BatchNeeds,
  campaigns: ReadonlyMap<string, KnownCampaign>,
  placedBefore: ReadonlySet<string>,
): Promise<Set<string>> {
  if (placedBefore.size === 0) return new Set();
  const ids = [...placedBefore];
  const rows = await tx.$queryRaw<{ campaign_id: string; log_offset: bigint | number | string }[]>`
    SELECT e.campaign_id, e.log_offset
      FROM unnest(${ids}::text[], ${ids.map((id) => campaigns.get(id)!.entrants)}::int[]) AS k(campaign_id, position)
      JOIN entries e ON e.campaign_id = k.campaign_id AND e.position = k.position`;
  return new Set(rows.filter((r) => BigInt(r.log_offset) < needs.firstEntry.get(r.campaign_id)!).map((r) => r.campaign_id));
}

/** Of the batch's users (of the campaigns that may hold some), those who already have an entry, in one query. */
async function placedUsers(tx: Tx, users: ReadonlyMap<string, string[]>): Promise<Map<string, Set<string>>> {
  const placed = new Map<string, Set<string>>();
  const ids: string[] = [];
  const names: string[] = [];
  for (const [campaignId, us] of users) {
    placed.set(campaignId, new Set());
    for (const u of us) {
      ids.push(campaignId);
      names.push(u);
    }
  }
  if (ids.length === 0) return placed;
  const found = await tx.$queryRaw<{ campaign_id: string; user_id: string }[]>`
    SELECT e.campaign_id, e.user_id
      FROM json_to_recordset(${JSON.stringify(ids.map((c, i) => ({ c, u: names[i] })))}::json) AS b(c text, u text)
      JOIN entries e ON e.campaign_id = b.c AND e.user_id = b.u`;
  for (const r of found) placed.get(r.campaign_id)!.add(r.user_id);
  return placed;
}

/**
 * A batch's rows of one table as one JSON parameter, read back with json_to_recordset. Seven
 * arrays of 10k values each cost the client more than the insert: Prisma maps every element of a
 * raw query's array parameters, pg escapes each into an array literal, and each is garbage a
 * moment later. One JSON.stringify is native.
 */
function rowsJson<R>(rows: readonly R[], columns: (r: R) => Record<string, string | number>): string {
  return JSON.stringify(rows.map(columns));
}

/** An entry's row under one-letter keys (json_to_recordset's column list names them): the keys were 40% of the JSON. */
const entriesJson = (entries: readonly EntryRow[]) =>
  rowsJson(entries, (r) => ({
    c: r.campaignId,
    u: r.userId,
    t: r.ticket,
    p: r.position,
    s: r.status,
    o: r.logOffset.toString(),
    e: r.enteredAt,
  }));

/** `writing`: told as the entries' insert, the batch's main write, goes to Postgres (ProcessorBatch.writing) */
async function writePlan(tx: Tx, plan: Plan, writing?: () => void): Promise<void> {
  const now = new Date();
  if (plan.campaigns.length > 0) {
    await tx.campaign.createMany({ data: plan.campaigns.map((c) => ({ ...c, updatedAt: now })), skipDuplicates: true });
  }
  const e = plan.entries;
  // No ON CONFLICT: the planner already left out every user who has an entry, so a conflict can
  // only be an entry the checkpoint has not seen, and positions would then be wrong. Checking each
  // row speculatively against both unique indexes cost a third of the insert; the unique
  // violation, turned into this stop (not a data error: nothing is parked), does the same job.
  if (e.length > 0) {
    try {
      const insert = tx.$executeRaw`
        INSERT INTO entries (campaign_id, user_id, ticket, position, status, log_offset, entered_at)
        SELECT c, u, t, p, s, o, e FROM json_to_recordset(${entriesJson(e)}::json)
                                     AS r(c text, u text, t text, p int, s text, o bigint, e timestamptz)`;
      writing?.();
      await insert;
    } catch (err) {
      if (sqlStateOf(err) !== UNIQUE_VIOLATION) throw err;
      throw new Error(
        `entries: ${errorLine(err)}: an entry is already present beyond the checkpoint; ` +
          'rewind the projection (rewindPrismaProjection) to rebuild it',
        { cause: err },
      );
    }
  }
  // winners and gifticons come from the single writer's events: a re-applied one is skipped, and the
  // counter grows only by what was inserted
  const winnersAdded = new Map<string, number>();
  const w = plan.winners;
  if (w.length > 0) {
    // counted in Postgres: one row per campaign comes back, not one per winner
    const added = await tx.$queryRaw<{ campaign_id: string; n: number }[]>`
      WITH inserted AS (
        INSERT INTO winners (campaign_id, user_id, position, won_at)
        SELECT * FROM json_to_recordset(${rowsJson(w, (r) => ({ campaign_id: r.campaignId, user_id: r.userId, position: r.position, won_at: r.wonAt.toISOString() }))}::json)
                   AS r(campaign_id text, user_id text, position int, won_at timestamptz)
        ON CONFLICT DO NOTHING
        RETURNING campaign_id)
      SELECT campaign_id, count(*)::int AS n FROM inserted GROUP BY campaign_id`;
    for (const r of added) winnersAdded.set(r.campaign_id, r.n);
  }
  const g = plan.gifticons;
  if (g.length > 0) {
    await tx.$executeRaw`
      INSERT INTO gifticons (id, campaign_id, user_id, code, issued_at, log_offset)
      SELECT * FROM json_to_recordset(${rowsJson(g, (r) => ({ id: r.id, campaign_id: r.campaignId, user_id: r.userId, code: r.code, issued_at: r.issuedAt.toISOString(), log_offset: r.logOffset.toString() }))}::json)
                 AS r(id text, campaign_id text, user_id text, code text, issued_at timestamptz, log_offset bigint)
      ON CONFLICT DO NOTHING`;
  }
  if (plan.heads.length > 0) await writeHeads(tx, plan.heads);

  for (const id of new Set([...plan.changes.keys(), ...winnersAdded.keys()])) {
    const c = plan.changes.get(id);
    const added = winnersAdded.get(id) ?? 0;
    if (!c && added === 0) continue;
    await tx.$executeRaw`
      UPDATE campaigns
         SET entrants = entrants + ${c?.entrants ?? 0},
             winners = winners + ${added},
             first_entry_at = COALESCE(first_entry_at, ${c?.firstEntryAt ?? null}::timestamptz),
             closed_at = COALESCE(closed_at, ${c?.closedAt ?? null}::timestamptz),
             sold_out_at = COALESCE(sold_out_at, ${c?.soldOutAt ?? null}::timestamptz),
             challenge_mode = COALESCE(${c?.challenge?.mode ?? null}::text, challenge_mode),
             challenge_difficulty = CASE WHEN ${c?.challenge ? 1 : 0}::int = 1 THEN ${c?.challenge?.difficulty ?? null}::int ELSE challenge_difficulty END,
             updated_at = ${now}
       WHERE id = ${id}`;
  }
}

/**
 * Rewinds the Prisma projection so the projector rebuilds it from the log: in one transaction,
 * deletes one campaign's rows (or every row when `campaignId` is null) and sets the checkpoint of
 * its partition (or of every partition of `topic`) back to 0. The running projector notices on its
 * next batch or within a second, seeks to 0 and re-applies the log; other campaigns of the same
 * partition are left as they are.
 *
 * With `partitions` (the topic's partition count, EVENT_PARTITIONS) only the campaign's own
 * partition is rewound; without it every partition of the topic is (correct, but re-reads more).
 * campaign_reports is not touched.
 */
export async function rewindPrismaProjection(
  prisma: PrismaClient,
  topic: string,
  campaignId: string | null,
  opts: { partitions?: number } = {},
): Promise<{ partitions: number[] }> {
  const only = campaignId !== null && opts.partitions ? partitionFor(campaignId, opts.partitions) : null;
  return prisma.$transaction(
    async (tx) => {
      // the checkpoint rows first, in order: the projector locks its row first too, so neither waits on the other in a cycle
      const locked =
        only === null
          ? await tx.$queryRaw<{ partition: number }[]>`
              SELECT partition FROM projection_checkpoints WHERE projection = ${PRISMA_PROJECTION} AND topic = ${topic}
               ORDER BY partition FOR UPDATE`
          : await tx.$queryRaw<{ partition: number }[]>`
              SELECT partition FROM projection_checkpoints WHERE projection = ${PRISMA_PROJECTION} AND topic = ${topic} AND partition = ${only}
                 FOR UPDATE`;
      const where = campaignId === null ? {} : { campaignId };
      await tx.lineHead.deleteMany({ where });
      await tx.gifticon.deleteMany({ where });
      await tx.winner.deleteMany({ where });
      await tx.entry.deleteMany({ where });
      await tx.campaign.deleteMany({ where: campaignId === null ? {} : { id: campaignId } });
      const now = new Date();
      await tx.projectionCheckpoint.updateMany({
        where: { projection: PRISMA_PROJECTION, topic, ...(only === null ? {} : { partition: only }) },
        data: { nextOffset: 0n, updatedAt: now },
      });
      // heard by the projectors' hosts when this commits (listenForRewinds): they seek at once
      await tx.$executeRaw`SELECT pg_notify(${REWIND_CHANNEL}, ${topic})`;
      return { partitions: locked.map((r) => Number(r.partition)) };
    },
    { timeout: 120_000, maxWait: 30_000 },
  );
}
