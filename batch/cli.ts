import cliProgress from 'cli-progress';
import type { Kafka } from 'kafkajs';
import type { Config } from '../src/config.js';
import { createKafka } from '../src/infra/kafka/eventLog.js';
import { createPrisma, type PrismaClient } from '../src/infra/prisma/client.js';
import { createRedis, RedisOrdering } from '../src/infra/redis/ordering.js';
import { logger } from '../src/logger.js';
import { openAgenda, type AgendaHandle, type JobName } from './agenda.js';
import { jobView, type JobView } from './jobView.js';
import { JobRuntime, type JobBody, type JobOptions } from './runtime.js';

/**
 * What the operator CLIs (src/cli/replay.ts, src/cli/report.ts) share: they queue a job, follow it
 * with a progress bar, and end with a summary table. When no worker picks the job up within
 * `workerWaitMs` (a deployment without a worker role), the CLI runs it itself: an Agenda worker for
 * that one kind of job, in this process, until the job is done.
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
  const redis = createRedis(config.REDIS_URL);
  const ordering = new RedisOrdering(redis, config.REDIS_PREFIX);
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 4 });
  const handle = await openAgenda(config.DATABASE_URL, { name: `cli-${process.pid}`, poolSize: 3, notify: true, processEvery: '1 second' });
  return {
    config,
    kafka,
    ordering,
    prisma,
    handle,
    async close() {
      await handle.close();
      await prisma.$disconnect();
      redis.disconnect();
    },
  };
}

export interface FollowOptions<D> {
  label: string;
  /** how long to wait for a worker before running the job in this process */
  workerWaitMs: number;
  inProcess: { name: JobName; body: JobBody<D>; options: JobOptions };
}

/** Follows a job to its end; returns its final view and data. */
export async function followJob<D>(s: CliServices, id: string, opts: FollowOptions<D>): Promise<{ view: JobView; data: D }> {
  const tty = process.stdout.isTTY === true;
  const bar = new cliProgress.SingleBar(
    {
      format: `${opts.label} |{bar}| {percentage}% | {status} | {duration_formatted}`,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 2000,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(100, 0, { status: 'QUEUED' });
  const queuedAt = Date.now();
  let runtime: JobRuntime | null = null;
  try {
    for (;;) {
      const attrs = await s.handle.getJob(id);
      if (!attrs) throw new Error(`job ${id} is gone`);
      const view = jobView(attrs);
      bar.update(Math.round(view.progress * 100), { status: view.status + (view.error && view.status !== 'FAILED' ? ` (retrying: ${view.error})` : '') });
      if (view.status === 'SUCCEEDED' || view.status === 'FAILED') return { view, data: attrs.data as D };
      if (!runtime && view.status === 'QUEUED' && !view.startedAt && Date.now() - queuedAt > opts.workerWaitMs) {
        if (!tty) console.log(`no worker picked the job up in ${opts.workerWaitMs / 1000} s: running it in this process`);
        runtime = new JobRuntime(s.handle, logger.child({ role: 'cli' }));
        runtime.define(opts.inProcess.name, opts.inProcess.body, opts.inProcess.options);
        await s.handle.start();
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    bar.stop();
    await runtime?.stop();
  }
}

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
  ms: (ms: number | null | undefined) => (ms === null || ms === undefined ? '-' : ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(3)} s`),
};
