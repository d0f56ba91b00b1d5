import { storedCodeOf } from '../../src/domain/events.js';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterStackDown, clusterStackUp } from '../../scripts/stack.js';
import { createRedis, Keys, RedisOrdering, scanKeys, sentinels } from '../../projections/redis-ordering/index.js';
import { loadConfig } from '../../src/config.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, runToEnd, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/**
 * Every store knows which log it was built from (issue 27). An operator moves firstcome to another
 * Kafka cluster under the same TOPIC_PREFIX, or deletes the events topic and lets it be created
 * again, or points a second deployment at the same database: the new log's offsets start at 0,
 * below every checkpoint of the old one. The process must not skip the new log in silence: it stays
 * up, writes nothing, says why on /readyz with the command that adopts the new log, answers
 * UNAVAILABLE, and once `npm run adopt-log` has run, a drop on the new log is in the tables and in
 * Redis in full.
 */
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { position status } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { position status gifticon { code } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const CAMPAIGN = `query($id: ID!) { campaign(id: $id) { stock entrants winners remaining } }`;
const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

/** The suite with some of its environment replaced (another cluster, another prefix). */
const withEnv = (iso: Isolated, env: Record<string, string>): Isolated => ({
  ...iso,
  env: { ...iso.env, ...env },
  config: loadConfig({ ...process.env, ...iso.env, ...env }),
});

interface Ready {
  status: number;
  failing: Record<string, string>;
}
async function readyz(port: number): Promise<Ready> {
  const r = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: r.status, failing: ((await r.json()) as { failing?: Record<string, string> }).failing ?? {} };
}

/** A drop: `users` users enter a campaign of `stock`; resolves once the log holds every decision. */
async function drop(iso: Isolated, port: number, campaign: string, stock: number, users: number): Promise<string[]> {
  const admin = await token('boss', 'admin');
  const created = await gql(port, admin, CREATE, {
    i: { id: campaign, title: campaign, reward: 'Chicken gifticon', stock, closesAt: inAnHour() },
  });
  expect(created.errors).toBeUndefined();
  const tokens = await Promise.all(Array.from({ length: users }, (_, i) => token(`${campaign}-u${i}`)));
  await pool(tokens, 16, async (t) => {
    const r = await gql(port, t, ENTER, { c: campaign });
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  });
  const audit = await waitUntil(
    () => auditFromLog(iso.config, campaign),
    (a) => a.winners === Math.min(stock, users) && a.gifticons === a.winners,
    { what: `every decision of ${campaign} in the log`, timeoutMs: 60_000 },
  );
  expect(audit.problems).toEqual([]);
  return tokens;
}

/** What the read model holds of a campaign, in a form the log can be compared with. */
async function tablesOf(prisma: PrismaClient, campaign: string) {
  const [row, entries, winners, gifticons] = await Promise.all([
    prisma.campaign.findUnique({ where: { id: campaign }, select: { stock: true, entrants: true, winners: true } }),
    prisma.entry.count({ where: { campaignId: campaign } }),
    prisma.winner.findMany({ where: { campaignId: campaign }, select: { userId: true, position: true }, orderBy: { position: 'asc' } }),
    prisma.gifticon.findMany({ where: { campaignId: campaign }, select: { userId: true, code: true }, orderBy: { userId: 'asc' } }),
  ]);
  return { row, entries, winners, gifticons };
}

/** Row counts of every read-model table and the number of projection keys in Redis: "nothing written" compares two of these. */
async function footprint(prisma: PrismaClient, iso: Isolated) {
  const counts = await prisma.$queryRaw<{ t: string; n: number }[]>`
    SELECT 'campaigns' AS t, count(*)::int AS n FROM campaigns UNION ALL SELECT 'entries', count(*)::int FROM entries
    UNION ALL SELECT 'winners', count(*)::int FROM winners UNION ALL SELECT 'gifticons', count(*)::int FROM gifticons
    UNION ALL SELECT 'checkpoints', count(*)::int FROM projection_checkpoints UNION ALL SELECT 'identities', count(*)::int FROM log_identities`;
  const identities = await prisma.logIdentityRecord.findMany({ orderBy: { projection: 'asc' } });
  const redis = createRedis(iso.config);
  let keys = 0;
  // the projection's keys (campaigns, partitions), not the edge's request budgets, which any request spends
  for (const pattern of [new Keys(iso.config.REDIS_PREFIX).anyCampaign(), new Keys(iso.config.REDIS_PREFIX).anyPartition()]) {
    for await (const batch of scanKeys(redis, pattern)) keys += batch.length;
  }
  redis.disconnect();
  return { counts: Object.fromEntries(counts.map((c) => [c.t, c.n])), identities, keys };
}

/**
 * The campaign in full, I1–I5: the log's own audit (I1–I3), and the Postgres tables and Redis (the
 * API's campaign and myEntry, answered from it) agreeing with the log's winners, positions and codes.
 */
async function inFull(iso: Isolated, port: number, prisma: PrismaClient, campaign: string, stock: number, tokens: string[]) {
  const audit = await auditFromLog(iso.config, campaign);
  expect(audit.problems).toEqual([]);
  expect(audit.winners).toBe(Math.min(stock, audit.entrants));
  const logWinners = audit.log.flatMap((l) =>
    l.event.type === 'WinnerSelected' ? [{ userId: l.event.userId, position: l.event.position }] : [],
  );
  // the tables hold each code as the log does: sealed
  const logCodes = audit.log.flatMap((l) =>
    l.event.type === 'GifticonIssued' ? [{ userId: l.event.userId, code: storedCodeOf(l.event) }] : [],
  );
  const tables = await waitUntil(
    () => tablesOf(prisma, campaign),
    (t) => t.winners.length === audit.winners && t.gifticons.length === audit.gifticons && t.entries === audit.entrants,
    { what: `${campaign} in the Postgres tables`, timeoutMs: 60_000 },
  );
  expect(tables.row).toEqual({ stock, entrants: audit.entrants, winners: audit.winners });
  expect(tables.winners).toEqual(logWinners.sort((a, b) => a.position - b.position));
  expect(tables.gifticons).toEqual(logCodes.sort((a, b) => (a.userId < b.userId ? -1 : 1)));
  const admin = await token('boss', 'admin');
  const view = await waitUntil(
    () => gql(port, admin, CAMPAIGN, { id: campaign }),
    (r) => r.data?.campaign?.winners === audit.winners,
    {
      what: `${campaign} in Redis`,
    },
  );
  expect(view.data!.campaign).toEqual({ stock, entrants: audit.entrants, winners: audit.winners, remaining: stock - audit.winners });
  const byUser = new Map(logWinners.map((w) => [w.userId, w.position]));
  const entrants = new Set(audit.log.flatMap((l) => (l.event.type === 'EntrantRegistered' ? [l.event.userId] : [])));
  const codes = new Map(logCodes.map((c) => [c.userId, c.code]));
  await pool(tokens, 8, async (t, i) => {
    const me = (await gql(port, t, MY, { c: campaign })).data!.myEntry;
    const user = `${campaign}-u${i}`;
    if (byUser.has(user)) expect(me).toEqual({ position: byUser.get(user), status: 'WON', gifticon: { code: codes.get(user) } });
    // turned away at the gate once the stock was taken: no entry, and none in the log either
    else if (entrants.has(user)) expect(me.status).toBe('LOST');
    else expect(me).toBeNull();
  });
}

/**
 * The move itself, whatever replaced the log: a drop on the old log, the process stopped,
 * `replace` run, the process started again on `env`: refused; adopted; a drop on the new log.
 */
async function replacedLog(iso: Isolated, replace: () => Promise<Record<string, string>>, expectReason: RegExp) {
  const prisma = createPrisma(iso.env.DATABASE_URL!);
  const apps: AppProcess[] = [];
  try {
    const first = await spawnApp(iso, 'api,writer,projector');
    apps.push(first);
    const oldTokens = await drop(iso, first.port, 'before', 4, 10);
    await inFull(iso, first.port, prisma, 'before', 4, oldTokens);
    await first.kill('SIGTERM');

    const env = await replace();
    const before = await footprint(prisma, iso);
    const app = await spawnApp(iso, 'api,writer,projector', env, { until: 'listening' });
    apps.push(app);
    const refused = await waitUntil(
      () => readyz(app.port),
      (r) => r.status === 503 && 'log-identity' in r.failing,
      { what: 'the refusal on /readyz' },
    );
    expect(refused.failing['log-identity']).toMatch(/^run `npm run adopt-log`: /);
    expect(refused.failing['log-identity']).toMatch(expectReason);
    expect(refused.failing['log-identity/recorded']).toMatch(/^cluster \S+ topic /);
    expect(refused.failing['log-identity/found']).toMatch(/^cluster \S+ topic /);
    expect(refused.failing['log-identity/found']).not.toBe(refused.failing['log-identity/recorded']);
    // enter and the reads answer UNAVAILABLE, and nothing is written anywhere
    const user = await token('late-user');
    expect((await gql(app.port, user, ENTER, { c: 'before' })).errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect((await gql(app.port, user, MY, { c: 'before' })).errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect(await footprint(prisma, iso)).toEqual(before);
    const moved = withEnv(iso, env);
    const newLog = new Kafka({ brokers: moved.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await newLog.connect();
    // the new log holds its genesis records only
    expect((await newLog.fetchTopicOffsets(iso.config.topics.events)).map((o) => o.high)).toEqual(['1', '1']);
    await newLog.disconnect();

    const adopted = await runToEnd('npm', ['run', '--silent', 'adopt-log', '--', '--keep-old'], { ...iso.env, ...env }, 120_000);
    expect(adopted.code, adopted.output).toBe(0);
    expect(adopted.output).toMatch(/adopted\s+│ cluster/);
    // the waiting process starts by itself
    await waitUntil(
      () => readyz(app.port),
      (r) => r.status === 200,
      { what: 'ready once the log is adopted', timeoutMs: 60_000 },
    );
    // what the old log alone knew was archived, not lost
    const archived = await prisma.$queryRawUnsafe<{ table_name: string }[]>(
      `SELECT table_name::text FROM information_schema.tables WHERE table_name LIKE 'old\\_%\\_winners' AND table_schema = current_schema()`,
    );
    expect(archived).toHaveLength(1);
    expect(await prisma.$queryRawUnsafe(`SELECT count(*)::int AS n FROM "${archived[0]!.table_name}"`)).toEqual([{ n: 4 }]);

    const tokens = await drop(moved, app.port, 'after', 5, 12);
    await inFull(moved, app.port, prisma, 'after', 5, tokens);
    // every store now records the new log
    const found = refused.failing['log-identity/found']!;
    const identity = await prisma.logIdentityRecord.findUnique({ where: { projection: 'prisma-tables' } });
    expect(found).toContain(`cluster ${identity!.clusterId} topic ${identity!.topic}`);
    expect(found).toContain(`log ${identity!.logId}`);
    const redis = createRedis(iso.config);
    const marks = await sentinels(new RedisOrdering(redis, iso.config.REDIS_PREFIX));
    redis.disconnect();
    expect(marks.length).toBeGreaterThan(0);
    for (const m of marks)
      expect(m.identity).toEqual({
        clusterId: identity!.clusterId,
        topic: identity!.topic,
        partitions: identity!.partitions,
        logId: identity!.logId,
      });
  } finally {
    await Promise.all(apps.map((a) => a.kill('SIGTERM')));
    await prisma.$disconnect();
  }
}

describe('the events topic deleted and created again under the same name', () => {
  let iso: Isolated;
  beforeAll(async () => {
    iso = await isolated('logid_recreated');
  });
  afterAll(async () => {
    await iso?.cleanup();
  });

  it('is refused as another log until adopt-log, then a drop on it is in the tables and Redis in full', async () => {
    await replacedLog(
      iso,
      async () => {
        const admin = new Kafka({ brokers: iso.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
        await admin.connect();
        await admin.deleteTopics({ topics: [iso.config.topics.events] });
        await waitUntil(
          () => admin.listTopics(),
          (ts) => !ts.includes(iso.config.topics.events),
          { what: 'the topic gone' },
        );
        await admin.disconnect();
        return {};
      },
      /created again/,
    );
  }, 300_000);
});

describe('two TOPIC_PREFIXes on one database', () => {
  let a: Isolated;
  const apps: AppProcess[] = [];
  beforeAll(async () => {
    a = await isolated('logid_shared');
  });
  const other = () => withEnv(a, { TOPIC_PREFIX: `${a.env.TOPIC_PREFIX}-b`, REDIS_PREFIX: `${a.env.REDIS_PREFIX}-b` });
  afterAll(async () => {
    await Promise.all(apps.map((p) => p.kill('SIGTERM')));
    const b = other().config;
    const kafka = new Kafka({ brokers: b.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await kafka.connect();
    await kafka.deleteTopics({ topics: [b.topics.events, b.topics.parked] }).catch(() => undefined);
    await kafka.disconnect();
    await a?.cleanup();
  });

  it('refuses the second deployment, which neither sees nor rebuilds from the first one’s campaigns', async () => {
    const first = await spawnApp(a, 'api,writer,projector');
    apps.push(first);
    const prisma = createPrisma(a.env.DATABASE_URL!);
    try {
      await drop(a, first.port, 'mine', 3, 5);
      await waitUntil(
        () => prisma.winner.count({ where: { campaignId: 'mine' } }),
        (n) => n === 3,
        { what: 'the first drop in the tables' },
      );
      const before = await footprint(prisma, a);
      const second = await spawnApp(other(), 'api,writer,projector', {}, { until: 'listening' });
      apps.push(second);
      const refused = await waitUntil(
        () => readyz(second.port),
        (r) => 'log-identity' in r.failing,
        { what: 'the refusal on /readyz' },
      );
      expect(refused.status).toBe(503);
      expect(refused.failing['log-identity']).toMatch(
        /^run `npm run adopt-log`: the database's prisma-tables was built from another log \(another topic/,
      );
      const admin = await token('boss', 'admin');
      expect((await gql(second.port, admin, `query { campaigns { totalCount } }`)).errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
      expect((await gql(second.port, admin, CAMPAIGN, { id: 'mine' })).errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
      // the first deployment goes on as before, and its tables are its own
      expect((await readyz(first.port)).status).toBe(200);
      expect(await footprint(prisma, a)).toEqual(before);
      expect((await gql(first.port, admin, `query { campaigns { totalCount } }`)).data?.campaigns.totalCount).toBe(1);
    } finally {
      await prisma.$disconnect();
    }
  }, 180_000);
});

describe('a move to another Kafka cluster under the same TOPIC_PREFIX and database', () => {
  let cluster: Awaited<ReturnType<typeof clusterStackUp>>;
  let iso: Isolated;
  beforeAll(async () => {
    cluster = await clusterStackUp();
    iso = await isolated('logid_moved');
  }, 180_000);
  afterAll(async () => {
    const admin = new Kafka({ brokers: cluster.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [iso.config.topics.events, iso.config.topics.parked] }).catch(() => undefined);
    await admin.disconnect();
    await iso?.cleanup();
    if (cluster?.kafka === 'started' || cluster?.redis === 'started') await clusterStackDown();
  }, 120_000);

  it('is refused on the 3-broker cluster until adopt-log, then a drop on it is in the tables and Redis in full', async () => {
    await replacedLog(iso, async () => ({ KAFKA_BROKERS: cluster.env.KAFKA_BROKERS! }), /another Kafka cluster/);
  }, 300_000);
});

describe('a deployment from before log identities', () => {
  let iso: Isolated;
  beforeAll(async () => {
    iso = await isolated('logid_upgrade');
  });
  afterAll(async () => {
    await iso?.cleanup();
  });

  it('takes the log it finds, with no rebuild: the database gets its rows, the sentinels their identity', async () => {
    const prisma = createPrisma(iso.env.DATABASE_URL!);
    const redis = createRedis(iso.config);
    const ordering = new RedisOrdering(redis, iso.config.REDIS_PREFIX);
    const apps: AppProcess[] = [];
    try {
      const first = await spawnApp(iso, 'api,writer,projector');
      apps.push(first);
      const tokens = await drop(iso, first.port, 'older', 3, 6);
      await inFull(iso, first.port, prisma, 'older', 3, tokens);
      await first.kill('SIGTERM');
      // as an earlier build left them: no identity rows, sentinels holding a token alone
      await prisma.logIdentityRecord.deleteMany({});
      const marks = await sentinels(ordering);
      expect(marks.length).toBeGreaterThan(0);
      for (const m of marks) await redis.set(m.key, m.value.slice(m.value.lastIndexOf(' ') + 1));
      expect((await sentinels(ordering)).every((m) => m.identity === null)).toBe(true);

      const again = await spawnApp(iso, 'api,writer,projector');
      apps.push(again);
      const rows = await prisma.logIdentityRecord.findMany();
      expect(rows.map((r) => r.projection)).toEqual(['prisma-tables']);
      expect(rows[0]!.topic).toBe(iso.config.topics.events);
      const after = await sentinels(ordering);
      expect(after.map((m) => m.key).sort()).toEqual(marks.map((m) => m.key).sort());
      for (const m of after)
        expect(m.identity).toEqual({
          clusterId: rows[0]!.clusterId,
          topic: rows[0]!.topic,
          partitions: rows[0]!.partitions,
          logId: rows[0]!.logId,
        });
      // the same builds (tokens), so nothing was rebuilt, and the campaign is answered as before
      expect(after.map((m) => m.value.slice(m.value.lastIndexOf(' ') + 1)).sort()).toEqual(
        marks.map((m) => m.value.slice(m.value.lastIndexOf(' ') + 1)).sort(),
      );
      const metrics = await (await fetch(`http://127.0.0.1:${again.port}/metrics`)).text();
      expect(metrics).toMatch(/^firstcome_writer_rebuilds_total 0$/m);
      await inFull(iso, again.port, prisma, 'older', 3, tokens);
    } finally {
      await Promise.all(apps.map((a) => a.kill('SIGTERM')));
      redis.disconnect();
      await prisma.$disconnect();
    }
  }, 240_000);
});
