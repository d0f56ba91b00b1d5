import type { Admin, Kafka } from 'kafkajs';
import type { LogStamped } from './agenda.js';
import type { Config } from '../src/config.js';
import { partitionFor } from '../src/infra/kafka/partitioning.js';
import type { PrismaClient } from '../src/infra/prisma/client.js';
import {
  carriedCampaigns,
  deletePartition,
  dropLeftMarks,
  foldCarry,
  rebuildProgress,
  replayDeleted,
  scanCampaignIds,
  type RedisOrdering,
} from '../projections/redis-ordering/index.js';
import { committedOffsets, highWatermarks, nearlyReached, prismaCheckpoints, withAdmin } from './logPosition.js';
import type { JobContext } from './runtime.js';
import { describeOwnership, NoWriter, type Missing, reachLine, WRITER_WAIT_MS, writerOf, WriterWatch, type Projection } from './writers.js';

export type ReplayTarget = 'REDIS' | 'DATABASE' | 'ALL';

/** What the job carries in `agenda_jobs.data`; its phases live there too, so it resumes after a crash. */
export interface ReplayData extends LogStamped {
  target: ReplayTarget;
  campaignId: string | null;
  redis?: RedisReplayState;
  database?: DatabaseReplayState;
  result?: ReplayResult;
  /** what it does and waits on now (JobContext.note) */
  note?: string;
}

/**
 * A replay never writes a projection beside its live writer (two writers of the Redis line would
 * compute wrong places); it rewinds the one writer instead.
 *
 * REDIS: the `built` sentinel of the affected partitions goes and the campaign's keys (or every
 * campaign's) are wiped to a `building` mark (projections/redis-ordering: deletePartition); the
 * single writer notices within ~50 ms, replays the partition from offset 0 (places are a pure function
 * of offsets, codes come from GifticonIssued events) and sets the sentinel back when done.
 * Progress is the writer's own {next, until}.
 *
 * DATABASE: the Prisma projector treats its checkpoint row as the truth; `rewind` sets it back
 * (and clears the campaign's rows), the projector follows. Progress is its checkpoint against the
 * log's end at the start of the job.
 *
 * The phase reached is saved in the job's data, so a job re-run after its worker died resumes:
 * it never deletes a partition twice (a per-job marker), and one that died half way through a
 * partition wipes it again.
 *
 * Nothing is deleted or rewound unless a member of the writer's consumer group owns every
 * affected partition (within WRITER_WAIT_MS); otherwise the job fails for good with one line that
 * names the partitions and the command that starts a writer (batch/README.md says why it does not
 * write itself). The waits that follow keep watching the group: a writer that dies mid-rebuild
 * ends the job the same way instead of a wait that never ends.
 */

export interface RedisReplayState {
  phase: 'deleting' | 'rebuilding' | 'done';
  partitions: number[];
  /** partition → high watermark at the start: what the rebuild replays, the weights of progress */
  ends: Record<string, string>;
  startedAt: number;
  finishedAt?: number;
  /** campaigns whose keys were deleted */
  campaigns?: number;
}

export interface DatabaseReplayState {
  phase: 'rewinding' | 'catching-up' | 'done';
  partitions: number[];
  ends: Record<string, string>;
  startedAt: number;
  finishedAt?: number;
}

export interface ReplayResult {
  target: ReplayData['target'];
  campaignId: string | null;
  /** per projection: events replayed (the affected partitions up to their end) and seconds taken */
  redis?: { events: number; seconds: number; partitions: number[]; campaigns: number };
  database?: { events: number; seconds: number; partitions: number[] };
}

/** sets the Prisma projection's checkpoint back (projections/prisma-tables: rewindPrismaProjection) */
export type RewindPrisma = (prisma: PrismaClient, topic: string, campaignId: string | null) => Promise<unknown>;

export interface ReplayDeps {
  config: Config;
  kafka: Kafka;
  ordering: RedisOrdering;
  prisma: PrismaClient;
  rewind: RewindPrisma;
}

/** How long a replay waits on a writer that shows no progress before it fails (and is retried). */
const STALL_MS = 5 * 60_000;
const MARKER_TTL_S = 7 * 24 * 3600;
/** a round of the rebuild's progress and its writer's watch */
const POLL_MS = 50;
/**
 * The rebuild's end is seen within it (one GET per partition rebuilt): at 100k events/s a replay of
 * 100k events is a second long, and a 50 ms poll added 25 ms to it on average.
 */
const BUILT_POLL_MS = 10;

export function affectedPartitions(campaignId: string | null, partitions: number): number[] {
  return campaignId === null ? Array.from({ length: partitions }, (_, p) => p) : [partitionFor(campaignId, partitions)];
}

/** Progress over partitions weighted by their number of records; an empty partition weighs one. */
export function weightedProgress(parts: { weight: bigint; fraction: number }[]): number {
  let total = 0;
  let done = 0;
  for (const { weight, fraction } of parts) {
    const w = Number(weight > 0n ? weight : 1n);
    total += w;
    done += w * Math.min(1, Math.max(0, fraction));
  }
  return total === 0 ? 1 : done / total;
}

export async function runReplay(ctx: JobContext<ReplayData>, deps: ReplayDeps): Promise<void> {
  const data = ctx.data;
  if (data.target !== 'REDIS' && data.target !== 'DATABASE' && data.target !== 'ALL')
    throw new Error(`unknown replay target ${String(data.target)}`);
  // one admin connection for the whole job (the log's end, the writers, the waits): a connection
  // each was three connects, ~100 ms of a replay of 100k events that takes a second
  await withAdmin(deps.kafka, (admin) => replayOver(admin, ctx, deps, data));
}

async function replayOver(admin: Admin, ctx: JobContext<ReplayData>, deps: ReplayDeps, data: ReplayData): Promise<void> {
  const partitions = affectedPartitions(data.campaignId, deps.config.EVENT_PARTITIONS);
  const topic = deps.config.topics.events;
  const wantRedis = data.target !== 'DATABASE';
  const wantDatabase = data.target !== 'REDIS';

  if ((wantRedis && !data.redis) || (wantDatabase && !data.database)) {
    const ends = await highWatermarks(admin, topic);
    const endsOf = Object.fromEntries(partitions.map((p) => [String(p), String(ends.get(p) ?? 0n)]));
    const now = Date.now();
    if (wantRedis && !data.redis) data.redis = { phase: 'deleting', partitions, ends: endsOf, startedAt: now };
    if (wantDatabase && !data.database) data.database = { phase: 'rewinding', partitions, ends: endsOf, startedAt: now };
    await ctx.save(data);
  }

  // ALL runs both halves at once: the progress line shows what each waits on
  const notes: Record<Projection, string> = { redis: '', database: '' };
  const note = (projection: Projection, text: string) => {
    notes[projection] = text;
    ctx.note(
      [
        wantRedis && notes.redis ? `${wantDatabase ? 'redis ' : ''}${notes.redis}` : '',
        wantDatabase && notes.database ? `${wantRedis ? 'database ' : ''}${notes.database}` : '',
      ]
        .filter(Boolean)
        .join(' · '),
    );
  };
  const unstarted: Projection[] = [];
  if (data.redis?.phase === 'deleting') unstarted.push('redis');
  if (data.database?.phase === 'rewinding') unstarted.push('database');
  if (unstarted.length > 0) await requireWriters(ctx, admin, deps.config, unstarted, partitions, note);

  const fractions = { redis: wantRedis ? 0 : null, database: wantDatabase ? 0 : null } as { redis: number | null; database: number | null };
  const report = () => {
    const fs = [fractions.redis, fractions.database].filter((f): f is number => f !== null);
    return ctx.progress(fs.reduce((a, b) => a + b, 0) / fs.length);
  };
  // both settle before the job does: a failed half must not leave the other running beside a retry
  const settled = await Promise.allSettled([
    wantRedis
      ? replayRedis({
          ctx,
          deps,
          data,
          progress: (f) => ((fractions.redis = f), report()),
          note: (t) => note('redis', t),
          watch: watchWriter(admin, deps.config, 'redis'),
          admin,
        })
      : undefined,
    wantDatabase
      ? replayDatabase({
          ctx,
          deps,
          data,
          progress: (f) => ((fractions.database = f), report()),
          note: (t) => note('database', t),
          watch: watchWriter(admin, deps.config, 'database'),
          admin,
        })
      : undefined,
  ]);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;

  const result: ReplayResult = { target: data.target, campaignId: data.campaignId };
  const events = (ends: Record<string, string>) => Object.values(ends).reduce((a, b) => a + Number(b), 0);
  if (data.redis) {
    const r = data.redis;
    result.redis = {
      events: events(r.ends),
      seconds: ((r.finishedAt ?? Date.now()) - r.startedAt) / 1000,
      partitions: r.partitions,
      campaigns: r.campaigns ?? 0,
    };
  }
  if (data.database) {
    const d = data.database;
    result.database = { events: events(d.ends), seconds: ((d.finishedAt ?? Date.now()) - d.startedAt) / 1000, partitions: d.partitions };
  }
  data.result = result;
  await ctx.save(data);
  ctx.log.info({ result }, 'replay done');
}

/**
 * Before anything is deleted or rewound: every affected partition has a writer, or the job fails
 * for good (NoWriter) once WRITER_WAIT_MS has passed without one. Both writers of ALL are waited
 * for together, and a failure names every one missing.
 */
async function requireWriters(
  ctx: JobContext<ReplayData>,
  admin: Admin,
  config: Config,
  projections: Projection[],
  partitions: number[],
  note: (projection: Projection, text: string) => void,
): Promise<void> {
  const watches = projections.map((projection) => {
    const w = writerOf(config, projection);
    return { projection, watch: new WriterWatch(w, () => describeOwnership(admin, w), WRITER_WAIT_MS) };
  });
  const line = { then: 'then run the replay again (nothing was deleted or rewound)' };
  for (;;) {
    ctx.check();
    const failed: NoWriter[] = [];
    const waiting: Missing[] = [];
    for (const { projection, watch } of watches) {
      try {
        const r = await watch.check(partitions, line);
        if (r.waiting) {
          waiting.push({ writer: watch.writer, partitions: r.missing, ownership: r.ownership });
          note(projection, `checking for a writer: ${r.waiting}`);
        }
      } catch (err) {
        if (!(err instanceof NoWriter)) throw err;
        failed.push(err);
      }
    }
    if (failed.length > 0) throw NoWriter.of(failed, line, waiting);
    if (waiting.length === 0) return;
    await ctx.sleep(250);
  }
}

/** A watch on the writer of a projection over one admin connection, for a wait that may be long. */
const watchWriter = (admin: Admin, config: Config, projection: Projection) => {
  const w = writerOf(config, projection);
  return new WriterWatch(w, () => describeOwnership(admin, w), WRITER_WAIT_MS);
};

/** What one target's replay works with: the job, its progress and notes, and a watch on the target's writer over the job's admin connection. */
interface TargetRun {
  ctx: JobContext<ReplayData>;
  deps: ReplayDeps;
  data: ReplayData;
  progress: (f: number) => Promise<void>;
  note: (text: string) => void;
  watch: WriterWatch;
  admin: Admin;
}

// --- REDIS ------------------------------------------------------------------------------------

async function replayRedis({ ctx, deps, data, progress, note, watch, admin }: TargetRun): Promise<void> {
  const state = data.redis!;
  const { ordering, config } = deps;
  const topic = config.topics.events;

  if (state.phase === 'deleting') {
    // counted from the markers, so a resumed job counts what an earlier run of it deleted too
    let campaigns = 0;
    for (const p of state.partitions) {
      const waitingSince = Date.now();
      for (;;) {
        ctx.check();
        const where = { topic, partition: p };
        const deleted = await replayDeleted(ordering, where, ctx.id);
        if (deleted !== null) {
          campaigns += deleted; // deleted by this job already (an earlier run, or just now)
          break;
        }
        const busy = !(await ordering.isBuilt(where)) || (await rebuildProgress(ordering, where)) !== null;
        if (!busy) {
          await waitQuiet(ctx, deps, admin, p, note);
          const ids =
            data.campaignId !== null
              ? [data.campaignId]
              : [...(await scanCampaignIds(ordering))].filter((id) => partitionFor(id, config.EVENT_PARTITIONS) === p);
          const r = await deletePartition(ordering, where, ctx.id, ids, MARKER_TTL_S);
          if (r === 'DELETED') {
            ctx.log.info(
              { partition: p, campaigns: ids.length },
              'Redis campaigns wiped and built sentinel deleted: the writer rebuilds the partition',
            );
            continue; // counted from the marker
          }
          if (r === 'DONE') continue;
        }
        // BUSY: a rebuild of this partition is under way (a flush, another replay): let it finish first
        if (Date.now() - waitingSince > STALL_MS) {
          throw new Error(`partition ${p} has been rebuilding for ${STALL_MS / 60_000} min: is a writer running?`);
        }
        const { waiting } = await watch.check([p], {
          doing: `a rebuild of partition ${p} is under way (a flush, or another replay)`,
          then: 'then run the replay again (nothing was deleted)',
        });
        note(`deleting: ${waiting ?? `waiting for the rebuild under way on partition ${p} (a flush, or another replay) to finish first`}`);
        await ctx.sleep(250);
      }
    }
    state.campaigns = campaigns;
    state.phase = 'rebuilding';
    await ctx.save(data);
  }

  if (state.phase === 'rebuilding') {
    let last = -1;
    let movedAt = Date.now();
    for (;;) {
      ctx.check();
      const parts = await Promise.all(
        state.partitions.map(async (p) => {
          const weight = BigInt(state.ends[String(p)] ?? '0');
          if (await ordering.isBuilt({ topic, partition: p }))
            return { partition: p, weight, fraction: 1, built: true, at: null, until: 0n };
          const r = await rebuildProgress(ordering, { topic, partition: p });
          const fraction = r && r.until > 0n ? Number(r.next) / Number(r.until) : 0;
          return { partition: p, weight, fraction, built: false, at: r ? r.next : null, until: r ? r.until : weight };
        }),
      );
      const f = weightedProgress(parts);
      if (parts.every((x) => x.built)) break;
      const open = parts.filter((x) => !x.built);
      const where = open.map((x) => `${x.partition} at offset ${x.at ?? 0n} of ${x.until}`).join(', ');
      const { waiting } = await watch.check(
        open.map((x) => x.partition),
        {
          doing: `the rebuild stopped (partition ${where})`,
          then: 'it finishes the rebuild by itself; the Redis reads of these partitions answer UNAVAILABLE until then',
        },
      );
      const w = writerOf(config, 'redis');
      note(`rebuilding: ${waiting ?? reachLine(w, open)}`);
      await progress(f);
      if (f !== last) {
        last = f;
        movedAt = Date.now();
      } else if (Date.now() - movedAt > STALL_MS) {
        throw new Error(
          `the Redis rebuild of partitions ${state.partitions.join(',')} made no progress for ${STALL_MS / 60_000} min: is a writer running?`,
        );
      }
      // between the rounds above, only the sentinels: the end is seen within BUILT_POLL_MS
      for (let waited = 0; waited < POLL_MS; waited += BUILT_POLL_MS) {
        await ctx.sleep(BUILT_POLL_MS);
        if ((await Promise.all(open.map((x) => ordering.isBuilt({ topic, partition: x.partition })))).every(Boolean)) break;
      }
    }
    const left =
      data.campaignId !== null
        ? [data.campaignId]
        : [...(await scanCampaignIds(ordering))].filter((id) => state.partitions.includes(partitionFor(id, config.EVENT_PARTITIONS)));
    const dropped = await dropLeftMarks(ordering, left);
    if (dropped.length > 0)
      ctx.log.info(
        { campaigns: dropped.length },
        'campaigns closed past retention were not rebuilt into Redis: their reads come from the read model',
      );
    await foldCarries(ctx, deps, data);
    state.phase = 'done';
    state.finishedAt = Date.now();
    await progress(1);
    await ctx.save(data);
  }
}

/**
 * Best effort: lets a batch the single writer is deciding right now finish before the keys go (its
 * committed offset reaches the end of the log), so no decision is under way while the partition is
 * cut. Gives up quietly after a few seconds on a busy partition: the writer still rebuilds.
 */
async function waitQuiet(
  ctx: JobContext<ReplayData>,
  deps: ReplayDeps,
  admin: Admin,
  partition: number,
  note: (text: string) => void,
): Promise<void> {
  const topic = deps.config.topics.events;
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const [ends, committed] = await Promise.all([highWatermarks(admin, topic), committedOffsets(admin, deps.config.groups.writer, topic)]);
    const end = ends.get(partition) ?? 0n;
    const next = committed.get(partition) ?? 0n;
    if (nearlyReached(next, end)) return;
    note(
      `deleting: waiting up to 5 s for the writer of partition ${partition} to commit what it is deciding (${reachLine(writerOf(deps.config, 'redis'), [{ partition, at: next, until: end - 1n }])})`,
    );
    await ctx.sleep(100);
  }
  ctx.log.warn({ partition }, 'partition still busy: deleting anyway, the writer rebuilds it');
}

async function foldCarries(ctx: JobContext<ReplayData>, deps: ReplayDeps, data: ReplayData): Promise<void> {
  const ids = data.campaignId !== null ? [data.campaignId] : await carriedCampaigns(deps.ordering);
  for (const id of ids) {
    const n = await foldCarry(deps.ordering, id);
    if (n < 0) ctx.log.warn({ campaignId: id }, 'campaign not in the rebuilt projection: its request count stays carried');
  }
}

// --- DATABASE ---------------------------------------------------------------------------------

/** One read of the checkpoint rows (the writer's watch reads the group once a second whatever this is): a replay's end is seen within it. */
const DATABASE_POLL_MS = 50;

async function replayDatabase({ ctx, deps, data, progress, note, watch }: TargetRun): Promise<void> {
  const state = data.database!;
  const topic = deps.config.topics.events;

  if (state.phase === 'rewinding') {
    // idempotent: rewinding a second time (a crash right after the first) only replays again
    await deps.rewind(deps.prisma, topic, data.campaignId);
    ctx.log.info({ partitions: state.partitions }, 'Prisma projection rewound: the projector replays from offset 0');
    state.phase = 'catching-up';
    await ctx.save(data);
  }

  if (state.phase === 'catching-up') {
    let last = -1;
    let movedAt = Date.now();
    for (;;) {
      ctx.check();
      const checkpoints = await prismaCheckpoints(deps.prisma, topic);
      const parts = state.partitions.map((p) => {
        const end = BigInt(state.ends[String(p)] ?? '0');
        const next = checkpoints.get(p) ?? 0n;
        return { partition: p, weight: end, fraction: end > 0n ? Number(next) / Number(end) : 1, done: next >= end, at: next, until: end };
      });
      if (parts.every((x) => x.done)) break;
      const open = parts.filter((x) => !x.done);
      const where = open.map((x) => `${x.partition} at offset ${x.at} of ${x.until}`).join(', ');
      const { waiting } = await watch.check(
        open.map((x) => x.partition),
        { doing: `the Prisma projection stopped catching up (partition ${where})`, then: 'it catches up by itself' },
      );
      note(`catching up: ${waiting ?? reachLine(writerOf(deps.config, 'database'), open)}`);
      const f = weightedProgress(parts);
      await progress(f);
      if (f !== last) {
        last = f;
        movedAt = Date.now();
      } else if (Date.now() - movedAt > STALL_MS) {
        throw new Error(
          `the Prisma projection made no progress for ${STALL_MS / 60_000} min on partitions ${state.partitions.join(',')}: is a projector running?`,
        );
      }
      await ctx.sleep(DATABASE_POLL_MS);
    }
    state.phase = 'done';
    state.finishedAt = Date.now();
    await progress(1);
    await ctx.save(data);
  }
}
