import type { Logged } from '../../src/domain/events.js';
import type { Prisma } from '../../src/infra/prisma/client.js';
import {
  needsOf,
  planBatch,
  usersOf,
  type BatchNeeds,
  type EntryRow,
  type KnownCampaign,
  type ParkedIssuanceRow,
  type Plan,
} from './plan.js';
import { writeHeads } from './heads.js';
import { errorLine, isUniqueViolation, sqlStateOf, UNIQUE_VIOLATION } from './sqlErrors.js';

type Tx = Prisma.TransactionClient;

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
function rowsJson<R>(rows: readonly R[], columns: (r: R) => Record<string, string | number | null>): string {
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
      INSERT INTO gifticons (id, campaign_id, user_id, code, issued_at, expires_at, log_offset)
      SELECT * FROM json_to_recordset(${rowsJson(g, (r) => ({ id: r.id, campaign_id: r.campaignId, user_id: r.userId, code: r.code, issued_at: r.issuedAt.toISOString(), expires_at: r.expiresAt?.toISOString() ?? null, log_offset: r.logOffset.toString() }))}::json)
                 AS r(id text, campaign_id text, user_id text, code text, issued_at timestamptz, expires_at timestamptz, log_offset bigint)
      ON CONFLICT DO NOTHING`;
  }
  // after the winners: a winner's WinnerSelected comes before its IssuanceParked in the log, maybe in
  // this very batch. The latest parking holds (GREATEST skips the null of a winner never parked);
  // applied again, it sets the same value
  // one row per winner (an UPDATE … FROM takes any one of several): its latest parking
  const latest = new Map<string, ParkedIssuanceRow>();
  for (const r of plan.parkedIssuances) {
    const k = `${r.campaignId}\n${r.userId}`;
    if ((latest.get(k)?.at.getTime() ?? -Infinity) < r.at.getTime()) latest.set(k, r);
  }
  const pk = [...latest.values()];
  if (pk.length > 0) {
    await tx.$executeRaw`
      UPDATE winners w SET issuance_parked_at = GREATEST(w.issuance_parked_at, r.at)
        FROM json_to_recordset(${rowsJson(pk, (r) => ({ campaign_id: r.campaignId, user_id: r.userId, at: r.at.toISOString() }))}::json)
             AS r(campaign_id text, user_id text, at timestamptz)
       WHERE w.campaign_id = r.campaign_id AND w.user_id = r.user_id`;
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
