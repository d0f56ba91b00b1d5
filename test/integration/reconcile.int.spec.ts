import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAgenda, type AgendaHandle } from '../../batch/agenda.js';
import { jobView } from '../../batch/jobView.js';
import { queueReplay, unfinishedReplay } from '../../batch/queue.js';
import { runReconcile, type ReconcileDeps } from '../../batch/reconcile.js';
import type { JobContext } from '../../batch/runtime.js';
import { EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { createRedis, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { logger } from '../../src/logger.js';
import { isolated, spawnApp, type AppProcess, type Isolated } from '../support/app.js';
import { elapse, waitFor } from '../support/wait.js';

const log = logger.child({ test: 'reconcile.int' });

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
