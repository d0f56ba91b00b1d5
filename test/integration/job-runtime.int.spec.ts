import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAgenda, type AgendaHandle } from '../../batch/agenda.js';
import { jobView } from '../../batch/jobView.js';
import { stamp } from '../../batch/queue.js';
import { JobRuntime, type JobContext } from '../../batch/runtime.js';
import { NoWriter } from '../../batch/writers.js';
import { logger } from '../../src/logger.js';
import { isolated, type Isolated } from '../support/app.js';
import { elapse, waitFor } from '../support/wait.js';

const log = logger.child({ test: 'job-runtime.int' });
/** A job body's own wait, longer than any test: only a cancel or a stop ends it. */
const UNTIL_INTERRUPTED_MS = 60_000;

describe('batch: Agenda runtime on Postgres', () => {
  let iso: Isolated;
  const handles: AgendaHandle[] = [];

  beforeAll(async () => {
    iso = await isolated('batch_runtime');
  });
  afterAll(async () => {
    for (const h of handles) await h.close();
    await iso?.cleanup();
  });

  it('several processes opening the queue at once do not race on creating its table', async () => {
    const opened = await Promise.all([1, 2, 3].map((i) => openAgenda(iso.config.DATABASE_URL, { name: `t${i}`, poolSize: 2 })));
    handles.push(...opened);
    const r = await opened[0]!.pool.query(`SELECT count(*)::int AS n FROM agenda_jobs`);
    expect(r.rows[0].n).toBe(0);
  });

  it('retries a failing job with backoff, then keeps it FAILED with its error', async () => {
    const handle = await openAgenda(iso.config.DATABASE_URL, { name: 'fails', processEvery: 200 });
    handles.push(handle);
    const runtime = new JobRuntime(handle, log);
    let attempts = 0;
    runtime.define(
      'cleanup',
      async () => {
        attempts++;
        throw new Error(`boom ${attempts}`);
      },
      { lockLifetime: 10_000, concurrency: 1, retries: 2, retryDelayMs: 100 },
    );
    await handle.start();
    try {
      const job = await handle.agenda.now('cleanup', {});
      const id = String(job.attrs._id);
      const view = await waitFor(
        async () => jobView((await handle.getJob(id))!),
        (v) => v.status === 'FAILED',
        20_000,
      );
      expect(attempts).toBe(3);
      expect(view.error).toBe('boom 3');
      expect(view.finishedAt).toBeInstanceOf(Date);
    } finally {
      await runtime.stop();
    }
  });

  it('a job that fails because no writer runs is FAILED at once with its line, not retried', async () => {
    const handle = await openAgenda(iso.config.DATABASE_URL, { name: 'nowriter', processEvery: 200 });
    handles.push(handle);
    const runtime = new JobRuntime(handle, log);
    let attempts = 0;
    runtime.define(
      'cleanup',
      async () => {
        attempts++;
        throw new NoWriter(
          [
            {
              writer: { role: 'writer', group: 't.decider', topic: 't.campaign-events' },
              partitions: [1],
              ownership: { state: 'Empty', members: 0, owners: new Map() },
            },
          ],
          { then: 'then run the replay again' },
        );
      },
      { lockLifetime: 10_000, concurrency: 1, retries: 3, retryDelayMs: 100 },
    );
    await handle.start();
    try {
      const id = String((await handle.agenda.now('cleanup', {})).attrs._id);
      const view = await waitFor(
        async () => jobView((await handle.getJob(id))!),
        (v) => v.status === 'FAILED',
        20_000,
      );
      expect(view.error).toBe(
        'no writer owns partition 1 of t.campaign-events (consumer group t.decider has no member): start one with `npm start -- --roles writer`, then run the replay again',
      );
      await elapse(1000, 'a retry would have run by now (100 ms backoff)');
      expect(attempts).toBe(1);
      expect(jobView((await handle.getJob(id))!).status).toBe('FAILED');
    } finally {
      await runtime.stop();
    }
  });

  it('a job queued for another log fails for good with why, and one queued for this log runs', async () => {
    const handle = await openAgenda(iso.config.DATABASE_URL, {
      name: 'logs',
      processEvery: 200,
      logTag: '["cluster-b","t.events",2,"log-b"]',
    });
    handles.push(handle);
    const runtime = new JobRuntime(handle, log);
    const ran: string[] = [];
    runtime.define<{ campaignId: string }>('close', async (ctx) => void ran.push(ctx.data.campaignId), {
      lockLifetime: 10_000,
      concurrency: 1,
      retries: 3,
      retryDelayMs: 100,
    });
    await handle.start();
    try {
      const old = String((await handle.agenda.now('close', { campaignId: 'old', log: '["cluster-a","t.events",2,"log-a"]' })).attrs._id);
      const own = String((await handle.agenda.now('close', { campaignId: 'own', ...stamp(handle) })).attrs._id);
      const failed = await waitFor(
        async () => jobView((await handle.getJob(old))!),
        (v) => v.status === 'FAILED',
        20_000,
      );
      expect(failed.error).toMatch(/^queued for another log \(\["cluster-a".*npm run adopt-log/);
      await waitFor(
        async () => jobView((await handle.getJob(own))!).status,
        (s) => s === 'SUCCEEDED',
        20_000,
      );
      expect(ran).toEqual(['own']);
    } finally {
      await runtime.stop();
    }
  });

  it('a running job shows what it waits on; cancelling it here fails it for good with the reason', async () => {
    const handle = await openAgenda(iso.config.DATABASE_URL, { name: 'cancel', processEvery: 200 });
    handles.push(handle);
    const runtime = new JobRuntime(handle, log);
    let attempts = 0;
    runtime.define(
      'close',
      async (ctx) => {
        attempts++;
        ctx.note('rebuilding: waiting for the writer of partition 1 to reach offset 41,200 (at 12,000)');
        await ctx.sleep(UNTIL_INTERRUPTED_MS);
      },
      { lockLifetime: 60_000, concurrency: 1, retries: 3, retryDelayMs: 100 },
    );
    await handle.start();
    try {
      const id = String((await handle.agenda.now('close', {})).attrs._id);
      await waitFor(
        async () => (await handle.getJob(id))?.data as { note?: string },
        (d) => d?.note === 'rebuilding: waiting for the writer of partition 1 to reach offset 41,200 (at 12,000)',
      );
      expect(await runtime.cancel(id, 'timed out after 3 s (--timeout)')).toBe(true);
      const view = await waitFor(
        async () => jobView((await handle.getJob(id))!),
        (v) => v.status === 'FAILED',
        10_000,
      );
      expect(view.error).toBe('timed out after 3 s (--timeout)');
      await elapse(1000, 'a retry of the cancelled job would have run by now (100 ms backoff)');
      expect(attempts).toBe(1);
      expect(await runtime.cancel(id, 'again')).toBe(false); // not running here any more
    } finally {
      await runtime.stop();
    }
  });

  it('a worker that stops mid-job hands it back; the next one resumes from the saved phase', async () => {
    const first = await openAgenda(iso.config.DATABASE_URL, { name: 'first', processEvery: 200 });
    handles.push(first);
    const phases: string[] = [];
    const body = (who: string) => async (ctx: JobContext<{ phase?: string }>) => {
      phases.push(`${who}:${ctx.data.phase ?? 'start'}`);
      if (!ctx.data.phase) await ctx.save({ phase: 'half' });
      if (who === 'first') await ctx.sleep(UNTIL_INTERRUPTED_MS); // interrupted by stop()
      await ctx.save({ phase: 'done' });
    };
    const r1 = new JobRuntime(first, log);
    r1.define('close', body('first'), { lockLifetime: 60_000, concurrency: 1, retries: 0, retryDelayMs: 0 });
    await first.start();
    const id = String((await first.agenda.now('close', {})).attrs._id);
    await waitFor(
      async () => phases.length,
      (n) => n === 1,
    );
    await waitFor(
      async () => (await first.getJob(id))?.data as { phase?: string },
      (d) => d?.phase === 'half',
    );
    await r1.stop();
    // handed back at once, not after its 60 s lock: QUEUED, and no failure recorded
    const back = (await first.getJob(id))!;
    expect(jobView(back)).toMatchObject({ status: 'QUEUED', error: null });
    expect(back.failCount ?? 0).toBe(0);

    const second = await openAgenda(iso.config.DATABASE_URL, { name: 'second', processEvery: 200 });
    handles.push(second);
    const r2 = new JobRuntime(second, log);
    r2.define('close', body('second'), { lockLifetime: 60_000, concurrency: 1, retries: 0, retryDelayMs: 0 });
    await second.start();
    try {
      await waitFor(
        async () => jobView((await second.getJob(id))!).status,
        (s) => s === 'SUCCEEDED',
        20_000,
      );
      expect(phases).toEqual(['first:start', 'second:half']);
      expect((await second.getJob(id))!.data).toEqual({ phase: 'done' });
    } finally {
      await r2.stop();
    }
  });
});
