import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { Keys } from '../../projections/redis-ordering/index.js';
import type { ReplayResult } from '../../batch/replay.js';
import { eventually, gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { logEnds, waitUntil } from '../support/wait.js';

/**
 * Batch and recovery over HTTP: a burst of a crowd with duplicate clicks through the real API,
 * writer and projector; a worker in a process of its own (so it can be killed alone). Then the
 * projections are thrown away and replayed from the log, and must read exactly as before.
 */
const USERS = 2000;
const STOCK = 300;
const CAMPAIGN = 'bt-burst';

const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { position } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { ticket position status gifticon { id code issuedAt } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const CAMPAIGN_Q = `query($id: ID!) { campaign(id: $id) { entrants winners status } }`;
const REPLAY = `mutation($t: ReplayTarget!, $c: ID) { replay(target: $t, campaignId: $c) { id name status progress } }`;
const REQUEST_REPORT = `mutation($c: ID!) { requestReport(campaignId: $c) { id name status } }`;
const REPORT = `query($c: ID!) { report(campaignId: $c) { campaignId entrants requests winners issued firstEntryAt soldOutAt generatedAt } }`;
const JOB = `query($id: ID!) { job(id: $id) { id name status progress startedAt finishedAt error } }`;

type Job = {
  id: string;
  name: string;
  status: string;
  progress: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
};
type MyEntry = {
  ticket: string;
  position: number | null;
  status: string;
  gifticon: { id: string; code: string; issuedAt: string } | null;
} | null;

let iso: Isolated;
let app: AppProcess;
let worker: AppProcess;
let prisma: PrismaClient;
let admin: string;
const tokens: string[] = [];
let before: MyEntry[] = [];
let tablesBefore: Awaited<ReturnType<typeof tables>>;
/** what the test itself saw: enter calls made, users answered with an entry */
let callsMade = 0;
const entered = new Set<number>();

const userId = (i: number) => `bt-u${i}`;
const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

/** the read model, rows in a stable order, every column a replay must reproduce */
async function tables() {
  const [entries, winners, gifticons] = await Promise.all([
    prisma.entry.findMany({ where: { campaignId: CAMPAIGN }, orderBy: { position: 'asc' } }),
    prisma.winner.findMany({ where: { campaignId: CAMPAIGN }, orderBy: { position: 'asc' } }),
    prisma.gifticon.findMany({ where: { campaignId: CAMPAIGN }, orderBy: { userId: 'asc' } }),
  ]);
  return { entries, winners, gifticons };
}

/** every user's myEntry; UNAVAILABLE (a rebuild under way) is retried */
async function myEntries(): Promise<MyEntry[]> {
  return pool(tokens, 50, async (t) => {
    const r = await waitUntil(
      () => gql<{ myEntry: MyEntry }>(app.port, t, MY, { c: CAMPAIGN }),
      (r) => r.errors?.[0]?.extensions?.code !== 'UNAVAILABLE',
      { what: 'myEntry answered, not UNAVAILABLE', timeoutMs: 10_000 },
    );
    expect(r.errors).toBeUndefined();
    return r.data!.myEntry;
  });
}

/** what the job itself recorded when it finished (Agenda's row, `data.result`) */
async function replayResult(id: string): Promise<ReplayResult> {
  const [row] = await prisma.$queryRaw<{ data: { result?: ReplayResult } }[]>`SELECT data FROM agenda_jobs WHERE id = ${id}::uuid`;
  expect(row?.data.result, `job ${id} recorded no result`).toBeDefined();
  return row!.data.result!;
}

const eventsIn = (ends: Map<number, bigint>, partitions: number[]) => partitions.reduce((n, p) => n + Number(ends.get(p) ?? 0n), 0);
const PARTITION = () => partitionFor(CAMPAIGN, iso.config.EVENT_PARTITIONS);

/**
 * Redis made wrong in a way no writer notices (the partition's sentinel stays): the first winner's
 * place is gone from the line, and another winner's gifticon. A flush would not do: the writer
 * rebuilds a partition whose sentinel is gone by itself, so a replay that did nothing would pass.
 */
async function tamperRedis(): Promise<void> {
  const keys = new Keys(iso.config.REDIS_PREFIX);
  const redis = new Redis(iso.config.REDIS_URL);
  try {
    const [first, second] = await redis.zrange(keys.line(CAMPAIGN), 0, 1);
    expect(await redis.zrem(keys.line(CAMPAIGN), first!)).toBe(1);
    expect(await redis.hdel(keys.gifts(CAMPAIGN), second!)).toBe(1);
  } finally {
    redis.disconnect();
  }
  expect(await myEntries()).not.toEqual(before);
}

/** Postgres made wrong behind the projector's back (its checkpoint stays): one winner and its gifticon gone. */
async function tamperTables(): Promise<void> {
  const w = await prisma.winner.findFirstOrThrow({ where: { campaignId: CAMPAIGN }, orderBy: { position: 'desc' } });
  await prisma.gifticon.deleteMany({ where: { campaignId: CAMPAIGN, userId: w.userId } });
  await prisma.winner.delete({ where: { campaignId_userId: { campaignId: CAMPAIGN, userId: w.userId } } });
  expect(await tables()).not.toEqual(tablesBefore);
}

async function job(id: string): Promise<Job> {
  const r = await gql<{ job: Job }>(app.port, admin, JOB, { id });
  expect(r.errors).toBeUndefined();
  return r.data!.job;
}

async function finished(id: string, timeoutMs = 60_000): Promise<Job> {
  const j = await eventually(
    () => job(id),
    (x) => x.status === 'SUCCEEDED' || x.status === 'FAILED',
    timeoutMs,
  );
  expect(j).toMatchObject({ status: 'SUCCEEDED', progress: 1, error: null });
  expect(new Date(j.finishedAt!).getTime()).toBeGreaterThanOrEqual(new Date(j.startedAt!).getTime());
  return j;
}

async function replay(target: 'REDIS' | 'DATABASE' | 'ALL', campaignId?: string): Promise<string> {
  const r = await gql<{ replay: Job }>(app.port, admin, REPLAY, { t: target, c: campaignId });
  expect(r.errors).toBeUndefined();
  expect(r.data!.replay).toMatchObject({ name: 'replay', status: 'QUEUED' });
  return r.data!.replay.id;
}

/** every key of this suite's REDIS_PREFIX (never FLUSHALL: other suites share the server) */
async function flushPrefix(): Promise<number> {
  const redis = new Redis(iso.config.REDIS_URL);
  let n = 0;
  try {
    for await (const keys of redis.scanStream({ match: new Keys(iso.config.REDIS_PREFIX).all(), count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length) n += await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
  return n;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function partitionsWithData(): Promise<number> {
  const kafka = new Kafka({ brokers: iso.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const a = kafka.admin();
  await a.connect();
  try {
    return (await a.fetchTopicOffsets(iso.config.topics.events)).filter((o) => Number(o.high) > 0).length;
  } finally {
    await a.disconnect();
  }
}

beforeAll(async () => {
  iso = await isolated('batch_e2e');
  [app, worker] = await Promise.all([spawnApp(iso, 'api,writer,projector'), spawnApp(iso, 'worker')]);
  prisma = createPrisma(iso.env.DATABASE_URL!);
  admin = await token('bt-admin', 'admin');
  const created = await gql(app.port, admin, CREATE, {
    i: { id: CAMPAIGN, title: 'Burst', reward: 'Chicken gifticon', stock: STOCK, closesAt: inAnHour() },
  });
  expect(created.errors).toBeUndefined();

  for (let i = 0; i < USERS; i++) tokens.push(await token(userId(i)));
  // every user clicks twice, every 5th three times; shuffled, 64 at a time
  const calls = Array.from({ length: USERS }, (_, i) => i).flatMap((i) => (i % 5 === 0 ? [i, i, i] : [i, i]));
  for (let i = calls.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [calls[i], calls[j]] = [calls[j]!, calls[i]!];
  }
  await pool(calls, 64, async (i) => {
    const r = await gql(app.port, tokens[i]!, ENTER, { c: CAMPAIGN });
    callsMade++;
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    if (r.data!.enter.entry) entered.add(i);
    else expect(r.data!.enter.rejection).toBe('SOLD_OUT');
  });
  expect(callsMade).toBe(calls.length);

  // answers may be QUEUED: the counts are awaited until they reach what the test saw, not read once
  const entrants = entered.size;
  expect(entrants).toBeGreaterThanOrEqual(STOCK);
  await waitUntil(
    async () =>
      (await gql<{ campaign: { entrants: number; winners: number } }>(app.port, admin, CAMPAIGN_Q, { id: CAMPAIGN })).data?.campaign,
    (c) => c?.entrants === entrants && c.winners === STOCK,
    { what: 'the API counts every entrant and winner', timeoutMs: 60_000 },
  );
  await waitUntil(
    async () => ({
      entries: await prisma.entry.count({ where: { campaignId: CAMPAIGN } }),
      gifticons: await prisma.gifticon.count({ where: { campaignId: CAMPAIGN } }),
    }),
    (q) => q.entries === entrants && q.gifticons === STOCK,
    { what: 'the tables hold every entrant and gifticon', timeoutMs: 60_000 },
  );
  before = await myEntries();
  expect(before.filter((e) => e !== null)).toHaveLength(entrants);
  expect(before.filter((e) => e?.gifticon)).toHaveLength(STOCK);
  tablesBefore = await tables();
}, 240_000);

afterAll(async () => {
  await prisma?.$disconnect();
  await Promise.all([app?.kill('SIGTERM'), worker?.kill('SIGTERM')]);
  await iso?.cleanup();
});

describe('batch: jobs over GraphQL', () => {
  it('are for admins only', async () => {
    const user = tokens[0]!;
    for (const [query, vars] of [
      [REPLAY, { t: 'REDIS' }],
      [REQUEST_REPORT, { c: CAMPAIGN }],
      [REPORT, { c: CAMPAIGN }],
      [JOB, { id: '00000000-0000-0000-0000-000000000000' }],
    ] as const) {
      expect((await gql(app.port, user, query, vars)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect((await gql(app.port, null, query, vars)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });

  it('name bad arguments and unknown things', async () => {
    const bad = await gql(app.port, admin, REPLAY, { t: 'REDIS', c: 'Not An Id' });
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'campaignId' });
    expect((await gql(app.port, admin, REQUEST_REPORT, { c: 'no-such-campaign' })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await gql(app.port, admin, JOB, { id: '00000000-0000-0000-0000-000000000000' })).data?.job).toBeNull();
    expect((await gql(app.port, admin, JOB, { id: 'nope' })).data?.job).toBeNull();
    expect((await gql(app.port, admin, REPORT, { c: 'no-such-campaign' })).data?.report).toBeNull();
  });
});

describe('batch: reports', () => {
  it('one is made by itself when the campaign sells out', async () => {
    const row = await eventually(
      () => prisma.campaignReport.findFirst({ where: { campaignId: CAMPAIGN, trigger: 'soldout' } }),
      (r) => r !== null,
      30_000,
    );
    expect(row).toMatchObject({ campaignId: CAMPAIGN, winners: STOCK, issued: STOCK });
    expect(row!.soldOutAt).toBeInstanceOf(Date);
    expect(row!.sellOutMs).toBe(BigInt(row!.soldOutAt!.getTime() - row!.openedAt.getTime()));
  });

  it("on demand, its numbers equal a direct count of the tables and of the API's counter", async () => {
    const r = await gql<{ requestReport: Job }>(app.port, admin, REQUEST_REPORT, { c: CAMPAIGN });
    expect(r.errors).toBeUndefined();
    await finished(r.data!.requestReport.id);
    const report = (await gql<{ report: Record<string, unknown> }>(app.port, admin, REPORT, { c: CAMPAIGN })).data!.report;

    const [direct] = await prisma.$queryRaw<{ entrants: number; winners: number; issued: number; first: Date; sold: Date }[]>`
      SELECT (SELECT count(*)::int FROM entries WHERE campaign_id = ${CAMPAIGN}) AS entrants,
             (SELECT count(*)::int FROM winners WHERE campaign_id = ${CAMPAIGN}) AS winners,
             (SELECT count(*)::int FROM gifticons WHERE campaign_id = ${CAMPAIGN}) AS issued,
             (SELECT min(entered_at) FROM entries WHERE campaign_id = ${CAMPAIGN}) AS first,
             (SELECT sold_out_at FROM campaigns WHERE id = ${CAMPAIGN}) AS sold`;
    expect(report).toMatchObject({
      campaignId: CAMPAIGN,
      entrants: direct!.entrants,
      winners: direct!.winners,
      issued: direct!.issued,
      firstEntryAt: direct!.first.toISOString(),
      soldOutAt: direct!.sold.toISOString(),
    });
    // and the counts the test made itself: every call it sent (duplicates and SOLD_OUT included),
    // every user it saw answered with an entry
    expect(report).toMatchObject({ requests: callsMade, entrants: entered.size, winners: STOCK, issued: STOCK });
  });
});

describe('batch: replays rebuild the projections from the log', () => {
  it('Redis flushed, then replay(REDIS): every myEntry reads as before', async () => {
    expect(await flushPrefix()).toBeGreaterThan(0);
    const ends = await logEnds(iso.config);
    const id = await replay('REDIS');
    await finished(id);
    expect(await myEntries()).toEqual(before);
    // the writer heals a flush by itself: only the job's own record tells that it replayed
    expect((await replayResult(id)).redis).toMatchObject({ partitions: [...ends.keys()].sort(), events: eventsIn(ends, [...ends.keys()]) });
  });

  it('Redis wrong without anyone noticing, then replay(REDIS, campaign): restored from the log, and the job replayed the partition', async () => {
    await tamperRedis();
    const rebuildsBefore = await metric(app.port, 'firstcome_writer_rebuilds_total');
    const ends = await logEnds(iso.config);
    const id = await replay('REDIS', CAMPAIGN);
    await finished(id);
    expect(await myEntries()).toEqual(before);
    const result = await replayResult(id);
    expect(result.database).toBeUndefined();
    expect(result.redis).toMatchObject({ partitions: [PARTITION()], campaigns: 1, events: eventsIn(ends, [PARTITION()]) });
    expect((await metric(app.port, 'firstcome_writer_rebuilds_total')) - rebuildsBefore).toBe(1);
  });

  it('Prisma tables emptied, then replay(DATABASE): the same winners and gifticons, codes included', async () => {
    await prisma.$executeRaw`DELETE FROM gifticons`;
    await prisma.$executeRaw`DELETE FROM winners`;
    await prisma.$executeRaw`DELETE FROM entries`;
    await prisma.$executeRaw`DELETE FROM campaigns`;
    expect(await prisma.winner.count()).toBe(0);
    const ends = await logEnds(iso.config);
    const id = await replay('DATABASE');
    await finished(id);
    expect(await tables()).toEqual(tablesBefore);
    const result = await replayResult(id);
    expect(result.redis).toBeUndefined();
    expect(result.database).toMatchObject({ partitions: [...ends.keys()].sort(), events: eventsIn(ends, [...ends.keys()]) });
  });

  it('one campaign: replay(ALL, campaign) rebuilds both from the log', async () => {
    await tamperRedis();
    await tamperTables();
    const ends = await logEnds(iso.config);
    const id = await replay('ALL', CAMPAIGN);
    await finished(id);
    expect(await tables()).toEqual(tablesBefore);
    expect(await myEntries()).toEqual(before);
    const result = await replayResult(id);
    const replayed = { partitions: [PARTITION()], events: eventsIn(ends, [PARTITION()]) };
    expect(result).toMatchObject({ target: 'ALL', campaignId: CAMPAIGN, redis: { ...replayed, campaigns: 1 }, database: replayed });
  });

  it('the worker SIGKILLed mid-replay and restarted: the replay finishes with the same result, each partition rebuilt once', async () => {
    await tamperRedis();
    await tamperTables();
    const rebuildsBefore = await metric(app.port, 'firstcome_writer_rebuilds_total');
    const id = await replay('ALL');
    const running = await eventually(
      () => job(id),
      (j) => j.status !== 'QUEUED',
      20_000,
    );
    await worker.kill('SIGKILL');
    expect(running.status).toBe('RUNNING');
    expect(running.progress).toBeLessThan(1);

    worker = await spawnApp(iso, 'worker');
    // the dead worker's lock expires (20 s) and the new one resumes the job from its saved phase
    await finished(id, 90_000);
    expect(await myEntries()).toEqual(before);
    expect(await tables()).toEqual(tablesBefore);
    expect((await metric(app.port, 'firstcome_writer_rebuilds_total')) - rebuildsBefore).toBe(await partitionsWithData());
  });
});

describe('batch: close on schedule', () => {
  it('appends CampaignClosed at closesAt, and a report follows', async () => {
    const id = 'bt-short';
    // room for create + enter on a busy box; the close itself is awaited, not timed
    const closesAt = new Date(Date.now() + 10_000);
    expect(
      (await gql(app.port, admin, CREATE, { i: { id, title: 'Short', reward: 'Coffee', stock: 5, closesAt: closesAt.toISOString() } }))
        .errors,
    ).toBeUndefined();
    const entry = await gql(app.port, tokens[1]!, ENTER, { c: id });
    expect(entry.errors).toBeUndefined();
    expect(entry.data!.enter.entry, `entered before ${closesAt.toISOString()}`).not.toBeNull();
    const closed = await eventually(
      async () => (await prisma.campaign.findUnique({ where: { id } }))?.closedAt ?? null,
      (at) => at !== null,
      30_000,
    );
    expect(closed!.getTime()).toBeGreaterThanOrEqual(closesAt.getTime());
    const report = await eventually(
      () => prisma.campaignReport.findFirst({ where: { campaignId: id, trigger: 'closed' } }),
      (r) => r !== null,
      30_000,
    );
    expect(report).toMatchObject({ entrants: 1, winners: 1, issued: 1 });
  });
});
