import type { Kafka } from 'kafkajs';
import type { LogStamped } from './agenda.js';
import type { Config } from '../src/config.js';
import { partitionFor } from '../src/infra/kafka/partitioning.js';
import type { PrismaClient } from '../src/infra/prisma/client.js';
import type { RedisOrdering } from '../projections/redis-ordering/index.js';
import { highWatermarks, prismaCheckpoints, withAdmin } from './logPosition.js';
import type { JobContext } from './runtime.js';
import { describeOwnership, reachLine, WRITER_WAIT_MS, writerOf, WriterWatch } from './writers.js';

/** What the job carries in `agenda_jobs.data`; its cursor lives there too, so it resumes after a crash. */
export interface ReportData extends LogStamped {
  campaignId: string;
  /** what made it: an admin's request, the sell-out or the close of the campaign */
  trigger: 'demand' | 'soldout' | 'closed';
  /** the log position the read model must have reached before counting, fixed at first run */
  until?: { partition: number; offset: string };
  /** the chunked cursor, saved after each chunk */
  cursor?: ReportCursor;
  result?: ReportResult;
  /** what it does and waits on now (JobContext.note) */
  note?: string;
}

/**
 * A campaign's report, counted in chunks: a cursor over `entries` by position (the unique
 * (campaign_id, position) index), CHUNK positions at a time, each chunk one aggregate query that
 * looks each entry up in `winners` and `gifticons`. The cursor and the running sums are saved in
 * the job as it goes, so a worker that dies mid-report resumes near the chunk it was on. Before
 * counting, the job waits
 * until the Prisma projection has read the log up to where it stood when the report was asked for
 * (or up to the sell-out / close event that triggered it). While it is behind, a projector must
 * own the partition: with none for WRITER_WAIT_MS the job fails for good, naming the partition and
 * the command that starts one (the wait would never end).
 */

export const CHUNK = 1000;

export interface ReportCursor {
  /** last position counted */
  position: number;
  entrants: number;
  winners: number;
  issued: number;
  firstEntryAt: string | null;
  chunks: number;
}

export interface ReportResult {
  reportId: string;
  campaignId: string;
  entrants: number;
  requests: number;
  winners: number;
  issued: number;
  firstEntryAt: string | null;
  openedAt: string;
  soldOutAt: string | null;
  sellOutMs: number | null;
  generatedAt: string;
  chunks: number;
  /** the chunked count alone (of this run: a resumed report counts only the rest) */
  countSeconds: number;
  /** the whole job: waiting for the read model, counting, writing the row */
  seconds: number;
}

export interface ReportDeps {
  config: Config;
  kafka: Kafka;
  ordering: RedisOrdering;
  prisma: PrismaClient;
}

/** How long a report waits for the read model to catch up before it fails (and is retried). */
const CATCH_UP_MS = 2 * 60_000;

interface ChunkRow {
  n: number;
  first: Date | null;
  winners: number;
  issued: number;
}

/** Adds one chunk's aggregate (positions up to `upTo`) to the running sums (pure). */
export function addChunk(c: ReportCursor, row: ChunkRow, upTo: number): ReportCursor {
  const first = row.first ? row.first.toISOString() : null;
  return {
    position: upTo,
    entrants: c.entrants + row.n,
    winners: c.winners + row.winners,
    issued: c.issued + row.issued,
    firstEntryAt: c.firstEntryAt === null ? first : first === null ? c.firstEntryAt : first < c.firstEntryAt ? first : c.firstEntryAt,
    chunks: c.chunks + 1,
  };
}

export async function runReport(ctx: JobContext<ReportData>, deps: ReportDeps): Promise<void> {
  const t0 = Date.now();
  const data = ctx.data;
  const { campaignId } = data;
  if (typeof campaignId !== 'string') throw new Error('report job without a campaignId');
  const topic = deps.config.topics.events;

  if (!data.until) {
    const partition = partitionFor(campaignId, deps.config.EVENT_PARTITIONS);
    const ends = await withAdmin(deps.kafka, (admin) => highWatermarks(admin, topic));
    data.until = { partition, offset: String(ends.get(partition) ?? 0n) };
    await ctx.save(data);
  }
  await waitForReadModel(ctx, deps, data.until.partition, BigInt(data.until.offset));

  const campaign = await deps.prisma.campaign.findUnique({ where: { id: campaignId } });
  if (!campaign) throw new Error(`campaign ${campaignId} is not in the read model`);

  const tCount = Date.now();
  let savedAt = tCount;
  let cursor: ReportCursor = data.cursor ?? { position: 0, entrants: 0, winners: 0, issued: 0, firstEntryAt: null, chunks: 0 };
  // Positions are dense (1..entrants), so a chunk is a range of them, and winners and gifticons are
  // probed per entry through their unique (campaign_id, user_id) indexes: every query stays bounded
  // whatever the planner's statistics say. (On a freshly filled table, a LIMIT over `position > x`
  // was planned as a scan-and-sort of the whole rest, and LEFT JOINs as a scan of every gifticon per
  // entry: 28-44 ms a chunk instead of 3-8.) The last position is fixed first: entries added
  // meanwhile are not counted.
  const [{ max } = { max: 0 }] = await deps.prisma.$queryRaw<{ max: number | null }[]>`
    SELECT max(position)::int AS max FROM entries WHERE campaign_id = ${campaignId}`;
  const last = max ?? 0;
  while (cursor.position < last) {
    ctx.check();
    ctx.note(`counting: positions ${cursor.position.toLocaleString('en-US')} of ${last.toLocaleString('en-US')}`);
    const upTo = Math.min(last, cursor.position + CHUNK);
    // hot path of the report: one aggregate row per chunk, not CHUNK rows over the wire; the ::int
    // casts keep the adapter's numeric parameters off a cast of the indexed column
    const [row] = await deps.prisma.$queryRaw<ChunkRow[]>`
      SELECT count(*)::int AS n, min(e.entered_at) AS first,
             count(*) FILTER (WHERE EXISTS (SELECT 1 FROM winners w WHERE w.campaign_id = e.campaign_id AND w.user_id = e.user_id))::int AS winners,
             count(*) FILTER (WHERE EXISTS (SELECT 1 FROM gifticons g WHERE g.campaign_id = e.campaign_id AND g.user_id = e.user_id))::int AS issued
        FROM entries e
       WHERE e.campaign_id = ${campaignId} AND e.position > ${cursor.position}::int AND e.position <= ${upTo}::int`;
    cursor = addChunk(cursor, row ?? { n: 0, first: null, winners: 0, issued: 0 }, upTo);
    // the cursor and its sums are saved together, about once a second: a resumed report recounts at most that much
    if (Date.now() - savedAt >= 1000) {
      data.cursor = cursor;
      await ctx.save(data);
      savedAt = Date.now();
    }
    await ctx.progress(cursor.position / last);
  }
  data.cursor = cursor;

  const countSeconds = (Date.now() - tCount) / 1000;
  // the API's counter lives in Redis; a campaign cleaned out of Redis keeps the read model's copy
  const requests = (await deps.ordering.requests(campaignId)) ?? campaign.requests;
  const generatedAt = new Date();
  const sellOutMs = campaign.soldOutAt ? campaign.soldOutAt.getTime() - campaign.opensAt.getTime() : null;
  const fields = {
    campaignId,
    entrants: cursor.entrants,
    requests,
    winners: cursor.winners,
    issued: cursor.issued,
    firstEntryAt: cursor.firstEntryAt ? new Date(cursor.firstEntryAt) : null,
    openedAt: campaign.opensAt,
    soldOutAt: campaign.soldOutAt,
    sellOutMs: sellOutMs === null ? null : BigInt(sellOutMs),
    generatedAt,
    trigger: data.trigger ?? 'demand',
  };
  const saved = await deps.prisma.campaignReport.upsert({ where: { jobId: ctx.id }, create: { ...fields, jobId: ctx.id }, update: fields });
  data.result = {
    reportId: String(saved.id),
    campaignId,
    entrants: fields.entrants,
    requests,
    winners: fields.winners,
    issued: fields.issued,
    firstEntryAt: cursor.firstEntryAt,
    openedAt: campaign.opensAt.toISOString(),
    soldOutAt: campaign.soldOutAt?.toISOString() ?? null,
    sellOutMs,
    generatedAt: generatedAt.toISOString(),
    chunks: cursor.chunks,
    countSeconds,
    seconds: (Date.now() - t0) / 1000,
  };
  await ctx.save(data);
  ctx.log.info({ result: data.result }, 'report made');
}

/** The projector moves its checkpoint past a trailing transaction marker once idle, so `>=` is exact. */
async function waitForReadModel(ctx: JobContext<ReportData>, deps: ReportDeps, partition: number, until: bigint): Promise<void> {
  const topic = deps.config.topics.events;
  const behind = async () => {
    const next = (await prismaCheckpoints(deps.prisma, topic)).get(partition) ?? 0n;
    return next >= until ? null : next;
  };
  if ((await behind()) === null) return;
  const w = writerOf(deps.config, 'database');
  await withAdmin(deps.kafka, async (admin) => {
    const watch = new WriterWatch(w, () => describeOwnership(admin, w), WRITER_WAIT_MS);
    const deadline = Date.now() + CATCH_UP_MS;
    for (;;) {
      const next = await behind();
      if (next === null) return;
      if (Date.now() > deadline) {
        throw new Error(`the read model is behind the log (partition ${partition}: ${next} of ${until}): is a projector running?`);
      }
      const { waiting } = await watch.check([partition], {
        doing: `the read model is behind the log (partition ${partition} at offset ${next} of ${until})`,
        then: 'then run the report again',
      });
      ctx.note(`catching up: ${waiting ?? reachLine(w, [{ partition, at: next, until }])}`);
      await ctx.sleep(200);
    }
  });
}
