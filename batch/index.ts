import { Counter, Gauge } from 'prom-client';
import { identityKey } from '../src/infra/kafka/logIdentity.js';
import type { RoleFactory, Shared } from '../src/plugin.js';
import type { Config } from '../src/config.js';
import { EventAppender } from '../src/infra/kafka/appender.js';
import { logger } from '../src/logger.js';
import { rewindPrismaProjection } from '../projections/prisma-tables/projector.js';
import { openAgenda, watchStore, workerBeat } from './agenda.js';
import type { CloseData } from './close.js';
import type { ReplayData } from './replay.js';
import type { ReportData } from './report.js';
import { runCleanup } from './cleanup.js';
import { runClose } from './close.js';
import { runIssue, type IssueData } from './issue.js';
import { queueReplay, unfinishedReplay } from './queue.js';
import { runReconcile, type ReconcileResult } from './reconcile.js';
import { runReplay, type RewindPrisma } from './replay.js';
import { runReport } from './report.js';
import { JobRuntime, type JobOptions } from './runtime.js';

const log = logger.child({ role: 'worker' });

export const SCHEDULE = { reconcile: '5 minutes', cleanup: '1 hour' } as const;

/**
 * Lock lifetimes are short on purpose: a job of a worker that was killed is resumed by another
 * worker once its lock expires, and running jobs touch their lock every quarter of it.
 */
export const JOB_OPTIONS: Record<'replay' | 'report' | 'reconcile' | 'cleanup' | 'close' | 'issue', JobOptions> = {
  replay: { lockLifetime: 20_000, concurrency: 2, retries: 3, retryDelayMs: 5_000 },
  report: { lockLifetime: 20_000, concurrency: 2, retries: 5, retryDelayMs: 2_000 },
  reconcile: { lockLifetime: 60_000, concurrency: 1, retries: 0, retryDelayMs: 0 },
  cleanup: { lockLifetime: 60_000, concurrency: 1, retries: 0, retryDelayMs: 0 },
  close: { lockLifetime: 20_000, concurrency: 4, retries: 10, retryDelayMs: 1_000 },
  issue: { lockLifetime: 20_000, concurrency: 2, retries: 5, retryDelayMs: 2_000 },
};

/** The Prisma projection's rewind, limited to the campaign's own partition. */
export const rewindFor =
  (config: Pick<Config, 'EVENT_PARTITIONS'>): RewindPrisma =>
  (prisma, topic, campaignId) =>
    rewindPrismaProjection(prisma, topic, campaignId, { partitions: config.EVENT_PARTITIONS });

export interface Worker {
  runtime: JobRuntime;
  lastReconcile: ReconcileResult | null;
}

/** The worker role: Agenda 6 on Postgres running report, replay, reconcile, cleanup, close and issue. */
export const startWorker: RoleFactory = async (shared: Shared) => {
  const { config, kafka, ordering, prisma, metrics, health, instance } = shared;
  const name = `worker-${instance}`;
  const handle = await openAgenda(config.DATABASE_URL, {
    name,
    processEvery: '2 seconds',
    maxConcurrency: 8,
    poolSize: 6,
    logTag: identityKey(shared.logIdentity),
  });
  // alive before it takes a job: a job it locks is never taken for an orphan
  const beat = workerBeat(handle, name, log);
  const appender = await EventAppender.connect(kafka, config);
  const runtime = new JobRuntime(handle, log);
  const state: Worker = { runtime, lastReconcile: null };

  runtime.define<ReplayData>(
    'replay',
    (ctx) => runReplay(ctx, { config, kafka, ordering, prisma, rewind: rewindFor(config) }),
    JOB_OPTIONS.replay,
  );
  runtime.define<ReportData>('report', (ctx) => runReport(ctx, { config, kafka, ordering, prisma }), JOB_OPTIONS.report);
  runtime.define<CloseData>('close', async (ctx) => void (await runClose(ctx, { config, ordering, prisma, appender })), JOB_OPTIONS.close);
  runtime.define<IssueData>('issue', (ctx) => runIssue(ctx, { prisma, appender }), JOB_OPTIONS.issue);
  runtime.define<Record<string, never>>('cleanup', async (ctx) => void (await runCleanup(ctx, { config, ordering })), JOB_OPTIONS.cleanup);
  runtime.define<Record<string, never>>(
    'reconcile',
    async (ctx) => {
      state.lastReconcile = await runReconcile(ctx, {
        config,
        kafka,
        ordering,
        prisma,
        repair: async (target, campaignId) =>
          (await unfinishedReplay(handle, target, campaignId)) ?? String((await queueReplay(handle, target, campaignId)).attrs._id),
      });
    },
    JOB_OPTIONS.reconcile,
  );

  const outcomes = new Counter({
    name: 'firstcome_jobs_total',
    help: 'batch jobs run, by name and outcome',
    labelNames: ['name', 'outcome'] as const,
    registers: [metrics.registry],
  });
  handle.agenda.on('success', (job) => outcomes.inc({ name: job.attrs.name, outcome: 'succeeded' }));
  handle.agenda.on('fail', (_err, job) => outcomes.inc({ name: job.attrs.name, outcome: 'failed' }));
  new Gauge({
    name: 'firstcome_reconcile_drift',
    help: 'campaigns whose projection differed from the log at the last reconciliation',
    labelNames: ['projection'] as const,
    registers: [metrics.registry],
    collect() {
      for (const projection of ['redis', 'database'] as const)
        this.set({ projection }, state.lastReconcile?.drift.filter((d) => d.projection === projection).length ?? 0);
    },
  });

  await handle.start();
  await handle.agenda.every(SCHEDULE.reconcile, 'reconcile', {}, { skipImmediate: true });
  await handle.agenda.every(SCHEDULE.cleanup, 'cleanup', {}, { skipImmediate: true });
  const store = watchStore(handle, health.reporter('worker/agenda'), log);
  log.info('batch worker started');

  return {
    // its triggers (triggerProcessors) run in the process's consumer host
    ready: () => shared.readSide.ready(),
    stop: async () => {
      store.stop();
      await runtime.stop();
      await beat.stop();
      await appender.close().catch((err) => log.warn({ err }, 'appender close failed'));
      await handle.close();
    },
  };
};
