import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAgenda, type AgendaHandle } from '../../batch/agenda.js';
import { runCleanup } from '../../batch/cleanup.js';
import { jobView } from '../../batch/jobView.js';
import { queueReplay, stamp, unfinishedReplay } from '../../batch/queue.js';
import { runReconcile, type ReconcileDeps } from '../../batch/reconcile.js';
import { JobRuntime, type JobContext } from '../../batch/runtime.js';
import { NoWriter } from '../../batch/writers.js';
import type { Config } from '../../src/config.js';
import { EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { createRedis, deletePartition, foldCarry, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { logger } from '../../src/logger.js';
import { eventually, isolated, spawnApp, type AppProcess, type Isolated } from '../support/app.js';
import { elapse } from '../support/wait.js';

const log = logger.child({ test: 'batch.int' });
/** A job body's own wait, longer than any test: only a cancel or a stop ends it. */
const UNTIL_INTERRUPTED_MS = 60_000;

async function waitFor<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const v = await eventually(probe, ok, timeoutMs);
  expect(ok(v), `condition not met in ${timeoutMs} ms: ${JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? String(x) : x))}`).toBe(true);
  return v;
}

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

describe('batch: Redis steps of replay and cleanup', () => {
  const prefix = `t:batch-lua-${process.pid}-${Date.now()}`;
  const redis = createRedis('redis://127.0.0.1:6379');
  const ordering = new RedisOrdering(redis, prefix);
  const k = ordering.keys;
  const topic = 'lua.campaign-events';
  const run = (jobId: string, ids: string[]) => deletePartition(ordering, { topic, partition: 0 }, jobId, ids, 60);

  afterAll(async () => {
    const keys = await redis.keys(k.all());
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('waits while a rebuild is under way, deletes once, carries the request counter, and folds it back once rebuilt', async () => {
    await redis.hset(k.meta('c1'), { id: 'c1', stock: '3', requests: '41' });
    await redis.zadd(k.line('c1'), 10, 'u1');
    await redis.hset(k.won('c1'), 'u1', '1|t');
    await redis.hset(k.gifts('c1'), 'u1', '{}');
    await redis.hset(k.pending('c1'), 'u9', '0-99');

    expect(await run('job-a', ['c1'])).toBe('BUSY'); // no sentinel: the partition is being rebuilt
    await redis.set(k.built(topic, 0), '1');
    await redis.set(k.rebuild(topic, 0), '{"next":"1","until":"9"}');
    expect(await run('job-a', ['c1'])).toBe('BUSY'); // a rebuild in progress
    await redis.del(k.rebuild(topic, 0));

    expect(await run('job-a', ['c1'])).toBe('DELETED');
    expect(await redis.exists(k.line('c1'), k.won('c1'), k.gifts('c1'), k.built(topic, 0))).toBe(0);
    expect(await redis.hgetall(k.meta('c1'))).toEqual({ building: '1' }); // read as UNAVAILABLE until rebuilt
    expect(await redis.hget(k.pending('c1'), 'u9')).toBe('0-99'); // the API's, kept
    expect(await redis.get(k.carry('c1'))).toBe('41');

    // the writer rebuilt it and new requests came in: the same job deletes nothing again
    await redis.set(k.built(topic, 0), '1');
    await redis.hset(k.meta('c1'), { id: 'c1', stock: '3', building: '1', requests: '2' });
    expect(await run('job-a', ['c1'])).toBe('DONE');
    expect(await foldCarry(ordering, 'c1')).toBe(-1); // still building
    await redis.hdel(k.meta('c1'), 'building');
    expect(await foldCarry(ordering, 'c1')).toBe(41);
    expect(await foldCarry(ordering, 'c1')).toBe(0);
    expect(await redis.hget(k.meta('c1'), 'requests')).toBe('43');
  });

  it('a job that died half way through a partition wipes it again, and deletes the sentinel a rebuild set meanwhile', async () => {
    await redis.hset(k.meta('c2'), { id: 'c2', stock: '3', requests: '5' });
    await redis.zadd(k.line('c2'), 10, 'u1');
    await redis.set(k.built(topic, 0), 'build-1');
    // the job's first run set its marker, deleted the sentinel and died; a rebuild finished since
    await redis.set(k.replayMarker(topic, 0, 'job-b'), 'wiping');
    expect(await run('job-b', ['c2'])).toBe('DELETED');
    expect(await redis.hgetall(k.meta('c2'))).toEqual({ building: '1' });
    expect(await redis.exists(k.line('c2'), k.built(topic, 0))).toBe(0);
    expect(await redis.get(k.carry('c2'))).toBe('5');
    expect(await run('job-b', ['c2'])).toBe('DONE');
  });

  it('cleanup removes every key of campaigns closed longer than the retention, and nothing else', async () => {
    const hour = 3_600_000;
    const now = Date.now();
    const meta = (id: string, closesAt: number, closedAt?: number) =>
      redis.hset(k.meta(id), {
        id,
        stock: '1',
        opensAt: String(now - 10 * hour),
        closesAt: String(closesAt),
        partition: '0',
        ...(closedAt ? { closedAt: String(closedAt) } : {}),
      });
    await meta('old', now + hour, now - 3 * hour); // closed early, 3 h ago
    await meta('ended', now - 3 * hour); // past closesAt 3 h ago
    await meta('recent', now - 1 * hour); // closed 1 h ago: within the retention
    await meta('open', now + hour);
    for (const id of ['old', 'ended', 'recent', 'open']) {
      await redis.zadd(k.line(id), 1, 'u1');
      await redis.zadd(k.campaigns(), now, id);
    }
    await redis.set(k.claim('old', 'u2'), 'x');
    await redis.set(k.built(topic, 0), '1');
    const config = { topics: { events: topic }, REDIS_RETENTION_HOURS: 2 } as unknown as Config;
    const ctx = {
      id: 'c',
      data: {},
      signal: new AbortController().signal,
      log,
      save: async () => undefined,
      progress: async () => undefined,
      sleep: async () => undefined,
      check: () => undefined,
      note: () => undefined,
    };

    const r = await runCleanup(ctx as JobContext<Record<string, never>>, { config, ordering });
    expect(r.removed.sort()).toEqual(['ended', 'old']);
    expect(await redis.keys(k.pattern('old'))).toEqual([]);
    expect(await redis.keys(k.pattern('ended'))).toEqual([]);
    expect(await redis.exists(k.meta('recent'), k.line('recent'), k.meta('open'), k.line('open'))).toBe(4);
    expect((await redis.zrange(k.campaigns(), 0, -1)).sort()).toEqual(['open', 'recent']);

    // while its partition is being rebuilt, a campaign is left alone
    await meta('old', now + hour, now - 3 * hour);
    await redis.zadd(k.campaigns(), now, 'old');
    await redis.del(k.built(topic, 0));
    expect((await runCleanup(ctx as JobContext<Record<string, never>>, { config, ordering })).removed).toEqual([]);
    expect(await redis.exists(k.meta('old'))).toBe(1);
  });
});

describe('batch: reconcile against the real log, Redis and Postgres', () => {
  let iso: Isolated;
  let app: AppProcess;
  let prisma: PrismaClient;
  let ordering: RedisOrdering;
  let jobs: AgendaHandle;
  const campaign = 'c-rec';
  const STOCK = 20;
  const USERS = 60;

  const ctx = (): JobContext<Record<string, never>> => {
    const abort = new AbortController();
    return {
      id: 'test',
      data: {},
      signal: abort.signal,
      log,
      save: async () => undefined,
      progress: async () => undefined,
      sleep: (ms: number) => elapse(ms, 'the job body asked to wait'),
      check: () => undefined,
      note: () => undefined,
    };
  };

  beforeAll(async () => {
    iso = await isolated('batch_reconcile');
    // a worker of its own runs the replays the reconciler queues (its scheduled reconcile is 5 min away)
    app = await spawnApp(iso, 'writer,projector,worker');
    jobs = await openAgenda(iso.config.DATABASE_URL, { name: 'reconcile-test', notify: true });
    const kafka = createKafka(iso.config, 'reconcile-test');
    const appender = await EventAppender.connect(kafka, iso.config);
    const now = Date.now();
    const e = (x: Partial<CampaignEvent>) =>
      ({ version: EVENT_VERSION, campaignId: campaign, occurredAt: new Date().toISOString(), ...x }) as CampaignEvent;
    await appender.append(
      e({
        type: 'CampaignCreated',
        eventId: `created:${campaign}`,
        title: 't',
        reward: 'r',
        stock: STOCK,
        opensAt: new Date(now - 1000).toISOString(),
        closesAt: new Date(now + 3_600_000).toISOString(),
      }),
    );
    await Promise.all(
      Array.from({ length: USERS }, (_, i) => appender.append(e({ type: 'EntrantRegistered', eventId: `e${i}`, userId: `u${i}` }))),
    );
    await appender.close();
    prisma = createPrisma(iso.config.DATABASE_URL);
    ordering = new RedisOrdering(createRedis(iso.config.REDIS_URL), iso.config.REDIS_PREFIX);
    await waitFor(
      () => prisma.gifticon.count({ where: { campaignId: campaign } }),
      (n) => n === STOCK,
      60_000,
    );
    await waitFor(
      () => prisma.entry.count({ where: { campaignId: campaign } }),
      (n) => n === USERS,
      60_000,
    );
  });

  afterAll(async () => {
    await app?.kill();
    await jobs?.close();
    await prisma?.$disconnect();
    ordering?.redis.disconnect();
    await iso?.cleanup();
  });

  /** the worker's own repair (batch/index.ts): a real replay job, queued unless one is under way */
  const deps = (repairs: string[]): ReconcileDeps => ({
    config: iso.config,
    kafka: createKafka(iso.config, 'reconcile-test'),
    ordering,
    prisma,
    repair: async (target, id) => {
      repairs.push(`${target}:${id}`);
      return (await unfinishedReplay(jobs, target, id)) ?? String((await queueReplay(jobs, target, id)).attrs._id);
    },
  });

  it('finds no drift when the projections agree with the log', async () => {
    const repairs: string[] = [];
    const r = await waitFor(
      () => runReconcile(ctx(), deps(repairs)),
      (x) => x.compared === 1,
      30_000,
    );
    expect(r.drift).toEqual([]);
    expect(repairs).toEqual([]);
  });

  it('finds a wrong winner in Redis and a missing gifticon in Postgres, and replays each', async () => {
    const won = await ordering.redis.hgetall(ordering.keys.won(campaign));
    const [winner, value] = Object.entries(won)[0]!;
    const loser = (await ordering.redis.zrange(ordering.keys.line(campaign), STOCK, STOCK))[0]!;
    await ordering.redis.hdel(ordering.keys.won(campaign), winner);
    await ordering.redis.hset(ordering.keys.won(campaign), loser, value);
    const gift = await prisma.gifticon.findFirstOrThrow({ where: { campaignId: campaign } });
    await prisma.gifticon.delete({ where: { id: gift.id } });

    const repairs: string[] = [];
    const r = await runReconcile(ctx(), deps(repairs));
    expect(r.drift.map((d) => [d.projection, d.differences])).toEqual([
      ['redis', ['winners differ (same count)']],
      ['database', [`issued ${STOCK - 1} (log ${STOCK})`]],
    ]);
    expect(repairs).toEqual([`REDIS:${campaign}`, `DATABASE:${campaign}`]);
    expect(r.repairs.map((x) => [x.target, x.campaignId])).toEqual([
      ['REDIS', campaign],
      ['DATABASE', campaign],
    ]);

    // the worker runs both replays to the end, and they put back what was taken
    for (const { jobId } of r.repairs) {
      const job = await waitFor(
        async () => jobView((await jobs.getJob(jobId))!),
        (v) => v.status === 'SUCCEEDED' || v.status === 'FAILED',
        60_000,
      );
      expect(job).toMatchObject({ name: 'replay', status: 'SUCCEEDED', error: null });
    }
    expect(await ordering.redis.hget(ordering.keys.won(campaign), winner)).toBe(value);
    expect(await ordering.redis.hexists(ordering.keys.won(campaign), loser)).toBe(0);
    const back = await prisma.gifticon.findUnique({ where: { id: gift.id } });
    expect(back).toEqual(gift);
    const again = await waitFor(
      () => runReconcile(ctx(), deps([])),
      (x) => x.compared === 1,
      30_000,
    );
    expect(again.drift).toEqual([]);
  });
});
