import type { Admin } from 'kafkajs';
import type { Config } from '../src/config.js';
import { highWatermarks, withAdmin } from './logPosition.js';
import { replayDatabase } from './replayDatabase.js';
import { replayRedis } from './replayRedis.js';
import { affectedPartitions, type ReplayData, type ReplayDeps, type ReplayResult } from './replayState.js';
import type { JobContext } from './runtime.js';
import { describeOwnership, NoWriter, type Missing, WRITER_WAIT_MS, writerOf, WriterWatch, type Projection } from './writers.js';

export {
  affectedPartitions,
  weightedProgress,
  type DatabaseReplayState,
  type RedisReplayState,
  type ReplayData,
  type ReplayDeps,
  type ReplayResult,
  type ReplayTarget,
  type RewindPrisma,
} from './replayState.js';

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
