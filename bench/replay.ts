import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { openAgenda } from '../batch/agenda.js';
import { jobView } from '../batch/jobView.js';
import { queueReplay, queueReport } from '../batch/queue.js';
import type { ReplayResult } from '../batch/replay.js';
import type { ReportResult } from '../batch/report.js';
import { startApp } from '../src/app.js';
import { median } from '../src/cli/crowd.js';
import { loadConfig } from '../src/config.js';
import { entrantRegistered, EVENT_VERSION, eventIds, type CampaignEvent } from '../src/domain/events.js';
import { createKafka } from '../src/infra/kafka/client.js';
import { ensureTopics } from '../src/infra/kafka/topics.js';
import { EventAppender } from '../src/infra/kafka/appender.js';
import { createPrisma } from '../src/infra/prisma/client.js';
import { cpuLine, withCpu } from './cpu.js';
import { dropDatabase } from '../src/infra/prisma/database.js';
import { migrate } from '../src/infra/prisma/migrate.js';
import { createRedis, lineSize, RedisOrdering } from '../projections/redis-ordering/index.js';
import { benchBoundedRebuild, printBoundedRebuild } from './boundedRebuild.js';
import { benchRun } from './run.js';

/**
 * `npx tsx bench/replay.ts`: replay throughput and report time. One campaign of N distinct
 * entrants goes straight to an isolated topic through EventAppender; the single writer, the projector
 * and the batch worker run in this process (the real roles) and decide it live. Then, as jobs
 * through Agenda: replay(REDIS) (the writer rebuilds the partition from offset 0), replay(DATABASE)
 * (the projector re-applies it) and a report over the N entries. Everything it creates (topic,
 * Redis keys, database) is removed at the end.
 */
const opts = new Command()
  .option('--entrants <n>', 'distinct entrants of the campaign', (v) => Number(v), 100_000)
  .option('--stock <n>', 'stock of the campaign', (v) => Number(v), 300)
  .option(
    '--repeat <n>',
    'replay: run the two replay jobs this many times over the same log, and report each run and the medians',
    (v) => Number(v),
    1,
  )
  .option('--section <name>', 'replay (the replay jobs), bounded (rebuilds after a flush) or all', 'all')
  .option(
    '--bounded-cases <list>',
    'bounded: closed campaigns behind the open one, one partition per case',
    (v) => v.split(',').map(Number),
    [0, 10, 100],
  )
  .option('--open-entrants <n>', 'bounded: entrants of the open campaign', (v) => Number(v), 20_000)
  .option('--closed-entrants <n>', 'bounded: entrants of each closed campaign', (v) => Number(v), 10_000)
  .option('--rounds <n>', 'bounded: flushes of each case, in turn; the table gives their median', (v) => Number(v), 3)
  .parse()
  .opts<{
    entrants: number;
    stock: number;
    repeat: number;
    section: 'replay' | 'bounded' | 'all';
    boundedCases: number[];
    openEntrants: number;
    closedEntrants: number;
    rounds: number;
  }>();

const { run, env: own } = benchRun('replay');
const { EVENTSTORE_URL: _archive, ...env } = process.env;
const config = loadConfig({
  ...env,
  PORT: '0',
  ...own,
  EVENT_PARTITIONS: '1',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
});

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main() {
  await migrate(config.DATABASE_URL);
  const kafka = createKafka(config, `bench-replay-${run}`);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config);
  const topic = config.topics.events;
  const campaignId = `bench-${run}`;
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 4 });
  const redis = createRedis(config);
  const ordering = new RedisOrdering(redis, config.REDIS_PREFIX);
  const handle = await openAgenda(config.DATABASE_URL, { name: 'bench', poolSize: 2, notify: true });
  const high = async () => BigInt((await admin.fetchTopicOffsets(topic))[0]!.high);

  const app = await startApp(config, ['writer', 'projector', 'worker']);
  try {
    // 1. the log: one campaign, N distinct entrants, appended as the API would (group commit)
    const t0 = performance.now();
    const appender = await EventAppender.connect(kafka, config);
    const now = Date.now();
    const base = { version: EVENT_VERSION, campaignId } as const;
    const instance = `bench-${run}-${process.pid}`;
    const created: CampaignEvent = {
      ...base,
      type: 'CampaignCreated',
      eventId: eventIds.created(campaignId),
      occurredAt: new Date(now).toISOString(),
      title: 'bench',
      reward: 'bench',
      stock: opts.stock,
      opensAt: new Date(now).toISOString(),
      closesAt: new Date(now + 3_600_000).toISOString(),
    };
    await appender.append(created);
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < opts.entrants; i++) {
      // as the API appends it: with the reply address of the request (its id is random, so the log compresses as a real one does)
      pending.push(appender.append(entrantRegistered(campaignId, `bench-u${i}`, new Date(), { instance, request: randomUUID() })));
      if (pending.length >= 5000) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    await appender.close();
    const appendS = (performance.now() - t0) / 1000;
    say(`appended ${fmt(opts.entrants + 1)} events in ${fmt(appendS, 1)} s (${fmt((opts.entrants + 1) / appendS)} events/s)`);

    // 2. decided live and projected: the writer's winners, the projector's entries
    const t1 = performance.now();
    for (;;) {
      const [entries, gifts] = await Promise.all([
        prisma.entry.count({ where: { campaignId } }),
        prisma.gifticon.count({ where: { campaignId } }),
      ]);
      const cp = await prisma.projectionCheckpoint.findFirst({ where: { topic } });
      if (entries === opts.entrants && gifts === opts.stock && cp && cp.nextOffset >= (await high())) break;
      await sleep(250);
    }
    const events = Number(await high());
    say(`decided and projected live in ${fmt((performance.now() - t1) / 1000, 1)} s; the log holds ${fmt(events)} records`);

    const runJob = async <T>(id: string): Promise<{ data: T; wallS: number }> => {
      const start = performance.now();
      for (;;) {
        const attrs = (await handle.getJob(id))!;
        const v = jobView(attrs);
        if (v.status === 'FAILED') throw new Error(`job ${id} failed: ${v.error}`);
        if (v.status === 'SUCCEEDED') return { data: attrs.data as T, wallS: (performance.now() - start) / 1000 };
        await sleep(50);
      }
    };

    // 3. replay(REDIS): keys and sentinel deleted, the writer replays the partition from offset 0
    // 4. replay(DATABASE): checkpoint rewound, the projector re-applies the partition
    const runs: {
      redis: NonNullable<ReplayResult['redis']>;
      redisWallS: number;
      database: NonNullable<ReplayResult['database']>;
      databaseWallS: number;
      cpu: { node: number; postgres: number };
    }[] = [];
    for (let i = 0; i < opts.repeat; i++) {
      const redisJob = await runJob<{ result: ReplayResult }>(String((await queueReplay(handle, 'REDIS', null)).attrs._id));
      const { job: dbJob, cpu } = await withCpu(prisma, async () =>
        runJob<{ result: ReplayResult }>(String((await queueReplay(handle, 'DATABASE', null)).attrs._id)),
      );
      const entriesAfter = await prisma.entry.count({ where: { campaignId } });
      const line = await lineSize(ordering, campaignId);
      if (entriesAfter !== opts.entrants || line !== opts.entrants)
        throw new Error(`replays lost entries: ${entriesAfter} rows, ${line} in the line`);
      runs.push({
        redis: redisJob.data.result.redis!,
        redisWallS: redisJob.wallS,
        database: dbJob.data.result.database!,
        databaseWallS: dbJob.wallS,
        cpu,
      });
      if (opts.repeat > 1) {
        const x = runs.at(-1)!;
        say(
          `run ${i + 1}: replay(REDIS) ${fmt(x.redis.events / x.redis.seconds)} events/s, replay(DATABASE) ${fmt(x.database.events / x.database.seconds)} events/s, ${cpuLine(x.cpu, x.database.events)}`,
        );
      }
    }
    const r = { events: runs[0]!.redis.events, seconds: median(runs.map((x) => x.redis.seconds)) };
    const redisJob = { wallS: median(runs.map((x) => x.redisWallS)) };
    const d = { events: runs[0]!.database.events, seconds: median(runs.map((x) => x.database.seconds)) };
    const dbJob = { wallS: median(runs.map((x) => x.databaseWallS)) };
    const dbCpu = { node: median(runs.map((x) => x.cpu.node)), postgres: median(runs.map((x) => x.cpu.postgres)) };
    // 5. a report over the N entries, in chunks of 1,000
    const reportJob = await runJob<{ result: ReportResult }>(String((await queueReport(handle, campaignId)).attrs._id));
    const rep = reportJob.data.result;
    if (rep.entrants !== opts.entrants || rep.winners !== opts.stock || rep.issued !== opts.stock)
      throw new Error(`report counts wrong: ${JSON.stringify(rep)}`);

    say('');
    say(
      `| measure (${fmt(events)} records, ${fmt(opts.entrants)} entrants, stock ${opts.stock}${opts.repeat > 1 ? `; replays: medians of ${opts.repeat} runs` : ''}) | time | throughput |`,
    );
    say('|---|---|---|');
    say(
      `| replay(REDIS): writer rebuild from offset 0 | ${fmt(r.seconds, 2)} s (job ${fmt(redisJob.wallS, 2)} s) | ${fmt(r.events / r.seconds)} events/s |`,
    );
    say(
      `| replay(DATABASE): projector re-apply from offset 0 | ${fmt(d.seconds, 2)} s (job ${fmt(dbJob.wallS, 2)} s) | ${fmt(d.events / d.seconds)} events/s |`,
    );
    say(
      `| replay(DATABASE): CPU per event, this process / Postgres | ${cpuLine(dbCpu, d.events)} | ${fmt(d.events / (dbCpu.node + dbCpu.postgres))} events per CPU-second |`,
    );
    say(
      `| report over ${fmt(rep.entrants)} entries (${rep.chunks} chunks of 1,000) | ${fmt(rep.countSeconds, 2)} s counting, ${fmt(rep.seconds, 2)} s in all (job ${fmt(reportJob.wallS, 2)} s) | ${fmt(rep.entrants / rep.countSeconds)} entries/s |`,
    );
  } finally {
    await app.stop();
    await handle.close();
    await prisma.$disconnect();
    const keys = await redis.keys(ordering.keys.all());
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    redis.disconnect();
    await admin.deleteTopics({ topics: [topic, config.topics.parked] }).catch(() => undefined);
    await admin.disconnect();
    await dropDatabase(config.DATABASE_URL).catch(() => undefined);
  }
}

/** The bounded-rebuild section (bench/boundedRebuild.ts): its own topic, keys and database. */
async function bounded() {
  const o = {
    cases: opts.boundedCases,
    openEntrants: opts.openEntrants,
    closedEntrants: opts.closedEntrants,
    stock: opts.stock,
    rounds: opts.rounds,
  };
  say('');
  say(`bounded rebuilds: ${o.cases.join(', ')} closed campaigns behind an open one, one partition each`);
  printBoundedRebuild(await benchBoundedRebuild(o), o);
}

(async () => {
  if (opts.section !== 'bounded') await main();
  if (opts.section !== 'replay') await bounded();
})().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
