import type { Kafka } from 'kafkajs';
import type { Config } from '../src/config.js';
import { Deadline, ProgressLine, TimedOut } from '../src/cli/progress.js';
import { createKafka } from '../src/infra/kafka/client.js';
import { createPrisma, type PrismaClient } from '../src/infra/prisma/client.js';
import { createRedis, RedisOrdering } from '../projections/redis-ordering/index.js';
import { logger } from '../src/logger.js';
import { JOBS_TABLE, openAgenda, watchOrphans, type AgendaHandle, type JobName } from './agenda.js';
import { jobView, type JobView } from './jobView.js';
import { withAdmin } from './logPosition.js';
import { JobRuntime, type JobBody, type JobOptions } from './runtime.js';
import { describeOwnership, NoWriter, writerOf, type Missing, WriterWatch, type Projection } from './writers.js';

/**
 * What the operator CLIs (src/cli/replay.ts, src/cli/report.ts) share: they queue a job, follow it
 * with a progress line that says what it waits on, and end with a summary table. When no worker
 * picks the job up within `workerWaitMs` (a deployment without a worker role), the CLI runs it
 * itself: an Agenda worker for that one kind of job, in this process, until the job is done. Every
 * wait ends at the `--timeout` deadline, with a non-zero exit and the reason.
 */

export interface CliServices {
  config: Config;
  kafka: Kafka;
  ordering: RedisOrdering;
  prisma: PrismaClient;
  handle: AgendaHandle;
  close(): Promise<void>;
}

export async function cliServices(config: Config): Promise<CliServices> {
  const kafka = createKafka(config, 'firstcome-cli');
  const redis = createRedis(config);
  const ordering = new RedisOrdering(redis, config.REDIS_PREFIX);
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 4 });
  const handle = await openAgenda(config.DATABASE_URL, { name: `cli-${process.pid}`, poolSize: 3, notify: true, processEvery: '1 second' });
  // a job the CLI waits on ends even where no API process runs to end it
  const orphans = watchOrphans(handle, logger.child({ component: 'cli' }));
  return {
    config,
    kafka,
    ordering,
    prisma,
    handle,
    async close() {
      orphans.stop();
      await handle.close();
      await prisma.$disconnect();
      redis.disconnect();
    },
  };
}

/**
 * Waits until a member of each writer's consumer group owns every partition (a replay rewinds
 * that writer). Throws NoWriter (its one line names the partitions and the command that starts a
 * writer) once `waitMs` passed without, or TimedOut at the deadline. Checked before the job is
 * queued, so nothing is left in the queue and nothing deleted when no writer runs.
 */
export async function awaitWriters(
  s: CliServices,
  projections: Projection[],
  partitions: number[],
  opts: { waitMs: number; deadline: Deadline; line: ProgressLine; then: string },
): Promise<void> {
  await withAdmin(s.kafka, async (admin) => {
    const watches = projections.map((p) => {
      const w = writerOf(s.config, p);
      return new WriterWatch(w, () => describeOwnership(admin, w), opts.waitMs, { everyMs: 500 });
    });
    const line = { then: opts.then };
    for (;;) {
      const waiting: string[] = [];
      const pending: Missing[] = [];
      const failed: NoWriter[] = [];
      for (const watch of watches) {
        try {
          const r = await watch.check(partitions, line);
          if (r.waiting) {
            waiting.push(r.waiting);
            pending.push({ writer: watch.writer, partitions: r.missing, ownership: r.ownership });
          }
        } catch (err) {
          if (!(err instanceof NoWriter)) throw err;
          failed.push(err);
        }
      }
      if (failed.length > 0) throw NoWriter.of(failed, line, pending);
      if (waiting.length === 0) return;
      opts.line.update(0, `checking for a writer: ${waiting.join(' · ')}`);
      if (opts.deadline.passed) throw new TimedOut(opts.deadline.seconds!, opts.line.text, 'nothing was queued, deleted or rewound');
      await sleep(opts.deadline.cap(250));
    }
  });
}

export interface FollowOptions<D> {
  line: ProgressLine;
  /** how long to wait for a worker before running the job in this process */
  workerWaitMs: number;
  deadline: Deadline;
  inProcess: { name: JobName; body: JobBody<D>; options: JobOptions };
}

/**
 * Follows a job to its end; returns its final view and data. The line shows the job's status and
 * what it waits on (its note). At the deadline it throws TimedOut, after it has dealt with the job:
 * one nobody picked up yet is taken off the queue (nothing runs it later by surprise), one running
 * in this process is failed with the reason, one running in a worker goes on there.
 */
export async function followJob<D>(s: CliServices, id: string, opts: FollowOptions<D>): Promise<{ view: JobView; data: D }> {
  const tty = process.stdout.isTTY === true;
  const { line, deadline } = opts;
  const queuedAt = Date.now();
  let runtime: JobRuntime | null = null;
  try {
    for (;;) {
      const attrs = await s.handle.getJob(id);
      if (!attrs) throw new Error(`job ${id} is gone`);
      const view = jobView(attrs);
      const note = (attrs.data as { note?: string } | undefined)?.note;
      line.update(view.progress, statusText(view, note, runtime !== null, Math.max(0, queuedAt + opts.workerWaitMs - Date.now())));
      if (view.status === 'SUCCEEDED' || view.status === 'FAILED') return { view, data: attrs.data as D };
      if (deadline.passed) throw await giveUp(s, id, view, runtime, deadline.seconds!, line.text);
      if (!runtime && view.status === 'QUEUED' && !view.startedAt && Date.now() - queuedAt > opts.workerWaitMs) {
        if (!tty) console.log(`no worker picked the job up in ${opts.workerWaitMs / 1000} s: running it in this process`);
        // the job's end is the summary and the last line; its log lines would only repeat it
        runtime = new JobRuntime(s.handle, logger.child({ role: 'cli' }, { level: 'error' }));
        runtime.define(opts.inProcess.name, opts.inProcess.body, opts.inProcess.options);
        await s.handle.start();
      }
      await sleep(deadline.cap(250));
    }
  } finally {
    line.stop();
    await runtime?.stop();
  }
}

function statusText(view: JobView, note: string | undefined, here: boolean, workerLeftMs: number): string {
  if (view.status === 'QUEUED') {
    if (view.error) return `QUEUED · retrying after: ${view.error}`;
    if (here) return 'QUEUED · starting it in this process';
    return `QUEUED · waiting for a worker to pick the job up (else this process runs it in ${Math.ceil(workerLeftMs / 1000)} s)`;
  }
  if (view.status === 'RUNNING') return `RUNNING${here ? ' here' : ''}${note ? ` · ${note}` : ''}`;
  return view.status;
}

async function giveUp(
  s: CliServices,
  id: string,
  view: JobView,
  runtime: JobRuntime | null,
  secs: number,
  waitingOn: string,
): Promise<TimedOut> {
  if (view.status === 'QUEUED' && !view.startedAt) {
    const r = await s.handle.pool.query(`DELETE FROM "${JOBS_TABLE}" WHERE id = $1 AND locked_at IS NULL AND last_run_at IS NULL`, [id]);
    if (r.rowCount === 1) return new TimedOut(secs, waitingOn, `job ${id} was taken off the queue: nothing ran`);
  }
  const reason = `the operator command that ran it stopped waiting after ${secs} s (--timeout) — ${waitingOn}`;
  if (runtime && (await runtime.cancel(id, reason))) {
    // Agenda records the failure once the body has ended: wait for the row to say so
    for (let i = 0; i < 40; i++) {
      const attrs = await s.handle.getJob(id);
      if (attrs && jobView(attrs).status === 'FAILED') break;
      await sleep(100);
    }
    return new TimedOut(secs, waitingOn, `job ${id} ran in this process and is FAILED with that reason`);
  }
  return new TimedOut(secs, waitingOn, `job ${id} goes on in its worker: follow it with the GraphQL query job(id: "${id}")`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A plain box table, for the closing summary. */
export function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  const v = Math.max(...rows.map(([, x]) => x.length));
  const line = (l: string, m: string, r: string) => `${l}${'─'.repeat(w + 2)}${m}${'─'.repeat(v + 2)}${r}`;
  return [line('┌', '┬', '┐'), ...rows.map(([k, x]) => `│ ${k.padEnd(w)} │ ${x.padEnd(v)} │`), line('└', '┴', '┘')].join('\n');
}

export const fmt = {
  int: (n: number) => n.toLocaleString('en-US'),
  date: (d: string | Date | null | undefined) => (d ? new Date(d).toISOString() : '-'),
  ms: (ms: number | null | undefined) =>
    ms === null || ms === undefined ? '-' : ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(3)} s`,
};
