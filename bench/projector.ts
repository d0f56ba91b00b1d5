import { Health } from '../src/health.js';
import { Command } from 'commander';
import type { Shared } from '../src/plugin.js';
import { loadConfig } from '../src/config.js';
import { cryptoMinter } from '../src/domain/campaign.js';
import { EVENT_VERSION, eventIds, type CampaignEvent } from '../src/domain/events.js';
import { Parking } from '../src/infra/kafka/parking.js';
import { createKafka } from '../src/infra/kafka/client.js';
import { readLogIdentity } from '../src/infra/kafka/genesis.js';
import { ensureTopics } from '../src/infra/kafka/topics.js';
import { EventAppender } from '../src/infra/kafka/appender.js';
import { createPrisma } from '../src/infra/prisma/client.js';
import { dropDatabase } from '../src/infra/prisma/database.js';
import { migrate } from '../src/infra/prisma/migrate.js';
import { createRedis, RedisOrdering } from '../projections/redis-ordering/index.js';
import { createMetrics } from '../src/metrics.js';
import { startProjectors } from '../projections/index.js';
import { loadReadSide, startReadSide, type ReadSide } from '../src/read-side/index.js';
import { PRISMA_PROJECTION } from '../projections/prisma-tables/projector.js';
import { cpuLine, withCpu } from './cpu.js';
import { benchRun } from './run.js';

/**
 * `npx tsx bench/projector.ts`: Prisma projector throughput and lag. A burst of N entrants of one
 * campaign (its CampaignCreated, N EntrantRegistered and, as the single writer would append them, a
 * WinnerSelected + GifticonIssued for each of the first `stock`) goes straight to an isolated topic
 * through EventAppender, as fast as the broker takes it, while the projector role runs in this
 * process. Lag = high watermark − checkpoint (the projector's own truth), sampled every 250 ms.
 * The settle time (issue #10's floor: ≤ 1 s) is from the burst's last acknowledged append until
 * Postgres holds every gifticon; `--stock 20000` makes every entrant a winner, so the gifticons
 * are the burst's last events.
 * Everything it creates (topic, database) is removed at the end.
 */
const opts = new Command()
  .option('--entrants <n>', 'distinct entrants in the burst', (v) => Number(v), 20_000)
  .option('--stock <n>', 'stock of the campaign', (v) => Number(v), 300)
  .option('--sample-ms <ms>', 'lag sampling interval', (v) => Number(v), 250)
  .parse()
  .opts<{ entrants: number; stock: number; sampleMs: number }>();

const { run, env: own } = benchRun('projector');
// the archive is not measured here
const { EVENTSTORE_URL: _archive, ...env } = process.env;
const config = loadConfig({
  ...env,
  ...own,
  EVENT_PARTITIONS: '1',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
});

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function burst(campaignId: string, entrants: number, stock: number): CampaignEvent[] {
  const now = Date.now();
  const at = new Date(now).toISOString();
  const base = { version: EVENT_VERSION, campaignId, occurredAt: at } as const;
  const out: CampaignEvent[] = [
    {
      ...base,
      type: 'CampaignCreated',
      eventId: eventIds.created(campaignId),
      title: 'bench',
      reward: 'bench',
      stock,
      opensAt: at,
      closesAt: new Date(now + 3_600_000).toISOString(),
    },
  ];
  for (let i = 0; i < entrants; i++) {
    const userId = `bench-u${i}`;
    out.push({ ...base, type: 'EntrantRegistered', eventId: `entrant:${campaignId}:${userId}:r`, userId });
    if (i < stock) {
      out.push({
        ...base,
        type: 'WinnerSelected',
        eventId: eventIds.winner(campaignId, userId),
        userId,
        position: i + 1,
        ticket: `0-${out.length - 1}`,
      });
      out.push({
        ...base,
        type: 'GifticonIssued',
        eventId: eventIds.gifticon(campaignId, userId),
        userId,
        gifticonId: cryptoMinter.id(),
        code: cryptoMinter.code(),
        position: i + 1,
      });
    }
  }
  return out;
}

/**
 * From the burst's last acknowledged append: when Postgres holds every gifticon (the settle time:
 * with stock = entrants every entrant's GifticonIssued comes last, as the writer appends it after
 * the answer) and when the projector's checkpoint reaches the log's end. Polled every 25 ms: the
 * polls are queries on the Postgres the projector writes to.
 */
async function settle(lag: () => Promise<number>, gifticons: () => Promise<number>, want: number, since: () => number, burstEnd: number) {
  let settled: number | null = null;
  let caughtUp: number | null = null;
  while (settled === null || caughtUp === null) {
    if (settled === null && (await gifticons()) >= want) settled = since();
    if (caughtUp === null && (await lag()) === 0) caughtUp = since();
    if (since() - burstEnd > 300) throw new Error('the projector did not catch up within 300 s');
    if (settled === null || caughtUp === null) await new Promise((r) => setTimeout(r, 25));
  }
  return { settled, caughtUp };
}

async function main() {
  const t0 = performance.now();
  const since = () => (performance.now() - t0) / 1000;
  await migrate(config.DATABASE_URL);
  const kafka = createKafka(config, `bench-projector-${run}`);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config, kafka);
  const logIdentity = await readLogIdentity(kafka, admin, config.topics.events);
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 8 });
  const redis = createRedis(config, { lazy: true });
  const parking = await Parking.connect(kafka, config);
  let readSide: ReadSide | null = null;
  const shared: Shared = {
    config,
    kafka,
    redis,
    ordering: new RedisOrdering(redis, config.REDIS_PREFIX),
    prisma,
    metrics: createMetrics(),
    parking,
    health: new Health(),
    readSide: { ready: () => readSide?.ready() ?? false },
    instance: `bench-${run}`,
    logIdentity,
  };
  const role = await startProjectors(shared);
  readSide = await startReadSide(shared, await loadReadSide(['projector']));
  while (!role.ready()) await new Promise((r) => setTimeout(r, 50));

  const topic = config.topics.events;
  const lag = async () => {
    const [offsets, rows] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      prisma.projectionCheckpoint.findMany({ where: { projection: PRISMA_PROJECTION, topic } }),
    ]);
    const next = new Map(rows.map((r) => [r.partition, r.nextOffset]));
    return offsets.reduce((sum, o) => sum + Math.max(0, Number(BigInt(o.high) - (next.get(o.partition) ?? 0n))), 0);
  };
  const applied = async () =>
    Number(
      (await prisma.projectionCheckpoint.aggregate({ where: { projection: PRISMA_PROJECTION, topic }, _sum: { nextOffset: true } }))._sum
        .nextOffset ?? 0n,
    );

  const events = burst(`bench-${run}`, opts.entrants, opts.stock);
  console.log(
    `projector bench: ${fmt(opts.entrants)} entrants, stock ${opts.stock}, ${fmt(events.length)} events, 1 partition, topic ${topic}`,
  );
  console.log('     t (s)    appended     applied        lag');

  const appender = await EventAppender.connect(kafka, config);
  let appended = 0;
  const samples: { t: number; appended: number; applied: number; lag: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = { t: since(), appended, applied: await applied(), lag: await lag() };
      samples.push(s);
      console.log(`${fmt(s.t, 2).padStart(10)} ${fmt(s.appended).padStart(11)} ${fmt(s.applied).padStart(11)} ${fmt(s.lag).padStart(10)}`);
      await new Promise((r) => setTimeout(r, opts.sampleMs));
    }
  })();

  const burstStart = since();
  // as fast as the broker takes it: the appender group-commits up to 1,000 messages per request
  // CampaignCreated first, alone: the appender's concurrent requests may land in any order, and an
  // entry the log holds before its campaign is skipped (as the writer skips it)
  await appender.append(events[0]!);
  appended = 1;
  const CHUNK = 5000;
  for (let i = 1; i < events.length; i += CHUNK) {
    await Promise.all(events.slice(i, i + CHUNK).map((e) => appender.append(e)));
    appended = Math.min(events.length, i + CHUNK);
  }
  const burstEnd = since();
  const lagAtEnd = await lag();
  const appliedAtEnd = await applied();
  const gifts = Math.min(opts.stock, opts.entrants);
  const { job: settledAt, cpu } = await withCpu(prisma, () => settle(lag, () => prisma.gifticon.count(), gifts, since, burstEnd));
  const { caughtUp, settled } = settledAt;
  sampling = false;
  await sampler;
  await appender.close();

  const entries = await prisma.entry.count();
  const positions = await prisma.entry.aggregate({ _min: { position: true }, _max: { position: true } });
  const winners = await prisma.winner.count();
  const gifticons = await prisma.gifticon.count();
  const ok =
    entries === opts.entrants &&
    positions._min.position === 1 &&
    positions._max.position === opts.entrants &&
    winners === Math.min(opts.stock, opts.entrants) &&
    gifticons === winners;
  const metrics = await shared.metrics.registry.getMetricsAsJSON();
  const counter = (name: string) => Number(metrics.find((m) => m.name === name)?.values[0]?.value ?? 0);
  const batches = counter('firstcome_projector_batches_total');

  const burstSeconds = burstEnd - burstStart;
  const projectSeconds = caughtUp - burstStart;
  const rows: [string, string][] = [
    ['events appended', fmt(events.length)],
    ['append burst', `${fmt(burstSeconds, 2)} s (${fmt(events.length / burstSeconds)} events/s)`],
    ['applied when the burst ended', `${fmt(appliedAtEnd)} (${fmt((100 * appliedAtEnd) / events.length, 1)} %)`],
    ['lag when the burst ended', `${fmt(lagAtEnd)} events`],
    [
      'settle time: every gifticon in Postgres',
      `${fmt(settled - burstEnd, 2)} s after the burst's last append was acknowledged (${fmt(gifts)} gifticons)`,
    ],
    ['caught up (lag 0) after the burst', `${fmt(caughtUp - burstEnd, 2)} s`],
    [
      'projector throughput',
      `${fmt(events.length / projectSeconds)} events/s (burst start to lag 0, sharing the process with the appender)`,
    ],
    [
      'drain rate after the burst',
      `${fmt((events.length - appliedAtEnd) / Math.max(0.001, caughtUp - burstEnd))} events/s (the projector alone)`,
    ],
    ['CPU per event after the burst', `${cpuLine(cpu, events.length - appliedAtEnd)}: this process / Postgres, with the polls`],
    ['batches (transactions)', `${fmt(batches)}, ${fmt(events.length / Math.max(1, batches))} events each on average`],
    [
      'tables',
      `${fmt(entries)} entries (positions ${positions._min.position}..${positions._max.position}), ${winners} winners, ${gifticons} gifticons: ${ok ? 'OK' : 'WRONG'}`,
    ],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log('\nsummary');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);

  await readSide.stop();
  await role.stop();
  await parking.close();
  await prisma.$disconnect();
  redis.disconnect();
  await admin.deleteTopics({ topics: [topic, config.topics.parked] }).catch(() => undefined);
  await admin.disconnect();
  await dropDatabase(config.DATABASE_URL);
  if (!ok) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
