import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../src/infra/kafka/client.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { auditFromLog } from '../support/audit.js';
import { eventually, gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/**
 * The read side over HTTP: one burst of a crowd with duplicate clicks through the real API,
 * writer and projector (one process), then the Postgres tables, the admin connections and their
 * guards are checked against what each user sees in `myEntry`.
 */
const USERS = 2000;
const STOCK = 300;
const CAMPAIGN = 'rs-burst';
const EXTRA_CAMPAIGNS = 24;
/** the first few extra campaigns sell out too, so that codes exist in more than one campaign */
const EXTRA_WITH_CODES = 6;
const extraStock = (i: number) => 1 + i;
const EXTRA_CODES = Array.from({ length: EXTRA_WITH_CODES }, (_, i) => extraStock(i)).reduce((a, b) => a + b, 0);

const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { position } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { ticket position status gifticon { id code } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const CAMPAIGN_Q = `query($id: ID!) { campaign(id: $id) { entrants winners remaining status } }`;
const CAMPAIGNS = `query($first: Int, $after: String) { campaigns(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id title stock status entrants winners remaining opensAt closesAt } } } }`;
const WINNERS = `query($c: ID!, $first: Int, $after: String) { winners(campaignId: $c, first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { cursor node { campaignId userId position wonAt gifticon { id userId code } } } } }`;
const GIFTICONS = `query($c: ID!, $first: Int, $after: String) { gifticons(campaignId: $c, first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id campaignId userId code issuedAt } } } }`;

type Page<N> = { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; edges: { cursor: string; node: N }[] };
type MyEntry = { ticket: string; position: number | null; status: string; gifticon: { id: string; code: string } | null };

let iso: Isolated;
let app: AppProcess;
let prisma: PrismaClient;
let admin: string;
const userId = (i: number) => `rs-u${i}`;
const tokens: string[] = [];
/** distinct users the line took, as the API (Redis) counts them */
let entrants = 0;

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

async function walk<N>(
  query: string,
  vars: Record<string, unknown>,
  first: number,
): Promise<{ nodes: N[]; totals: number[]; pages: number }> {
  const nodes: N[] = [];
  const totals: number[] = [];
  let after: string | null = null;
  let pages = 0;
  for (;;) {
    const r: { data?: Record<string, Page<N>>; errors?: unknown } = await gql<Record<string, Page<N>>>(app.port, admin, query, {
      ...vars,
      first,
      after,
    });
    expect(r.errors).toBeUndefined();
    const page: Page<N> = Object.values(r.data!)[0]!;
    pages++;
    totals.push(page.totalCount);
    expect(page.edges.length).toBeLessThanOrEqual(first);
    nodes.push(...page.edges.map((e) => e.node));
    if (page.edges.length) expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)!.cursor);
    if (!page.pageInfo.hasNextPage) break;
    expect(page.edges.length).toBe(first);
    after = page.pageInfo.endCursor;
    expect(pages).toBeLessThan(1000);
  }
  return { nodes, totals, pages };
}

beforeAll(async () => {
  iso = await isolated('read_side_e2e');
  app = await spawnApp(iso, 'api,writer,projector');
  prisma = createPrisma(iso.env.DATABASE_URL!);
  admin = await token('rs-admin', ['admin', 'codes:read']);
  const created = await gql(app.port, admin, CREATE, {
    i: { id: CAMPAIGN, title: 'Burst', reward: 'Chicken gifticon', stock: STOCK, closesAt: inAnHour() },
  });
  expect(created.errors).toBeUndefined();

  for (let i = 0; i < USERS; i++) tokens.push(await token(userId(i)));
  // every 4th user clicks twice; the calls go out shuffled, 50 at a time
  const calls = Array.from({ length: USERS }, (_, i) => i).flatMap((i) => (i % 4 === 0 ? [i, i] : [i]));
  for (let i = calls.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [calls[i], calls[j]] = [calls[j]!, calls[i]!];
  }
  const entered = new Set<number>();
  await pool(calls, 50, async (i) => {
    const r = await gql(app.port, tokens[i]!, ENTER, { c: CAMPAIGN });
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    if (r.data!.enter.entry) entered.add(i);
    else expect(r.data!.enter.rejection).toBe('SOLD_OUT');
  });
  // a few more campaigns for the campaigns connection; the first ones get as many entrants as stock
  await pool(
    Array.from({ length: EXTRA_CAMPAIGNS }, (_, i) => i),
    6,
    async (i) => {
      const r = await gql(app.port, admin, CREATE, {
        i: { id: `rs-extra-${i}`, title: `Extra ${i}`, reward: 'Coffee', stock: extraStock(i), closesAt: inAnHour() },
      });
      expect(r.errors).toBeUndefined();
      if (i >= EXTRA_WITH_CODES) return;
      for (let u = 0; u < extraStock(i); u++) {
        const e = await gql(app.port, tokens[u]!, ENTER, { c: `rs-extra-${i}` });
        expect(e.data?.enter.entry, JSON.stringify(e)).toBeTruthy();
      }
    },
  );

  // quiet: the tables hold every entrant the line took (the gate turns the rest away SOLD_OUT) and
  // every gifticon. Answers may have been QUEUED: the counts are awaited, not read once.
  entrants = entered.size;
  expect(entrants).toBeGreaterThanOrEqual(STOCK);
  await waitUntil(
    async () =>
      (await gql<{ campaign: { entrants: number; winners: number } }>(app.port, admin, CAMPAIGN_Q, { id: CAMPAIGN })).data?.campaign,
    (c) => c?.entrants === entrants && c.winners === STOCK,
    { what: 'the API counts every entrant the burst saw', timeoutMs: 60_000 },
  );
  await waitUntil(
    async () => ({
      entries: await prisma.entry.count({ where: { campaignId: CAMPAIGN } }),
      gifticons: await prisma.gifticon.count({ where: { campaignId: CAMPAIGN } }),
      campaigns: await prisma.campaign.count(),
    }),
    (q) => q.entries === entrants && q.gifticons === STOCK && q.campaigns === EXTRA_CAMPAIGNS + 1,
    { what: 'the tables hold the burst', timeoutMs: 60_000 },
  );
}, 240_000);

afterAll(async () => {
  await prisma?.$disconnect();
  await app?.kill('SIGTERM');
  await iso?.cleanup();
});

describe('read side: Postgres tables after a burst through the API', () => {
  it('the tables say for every user what myEntry says (I5)', async () => {
    const entries = new Map((await prisma.entry.findMany({ where: { campaignId: CAMPAIGN } })).map((e) => [e.userId, e]));
    const gifts = new Map((await prisma.gifticon.findMany({ where: { campaignId: CAMPAIGN } })).map((g) => [g.userId, g]));
    const mine = await pool(tokens, 50, async (t) => {
      const r = await gql<{ myEntry: MyEntry }>(app.port, t, MY, { c: CAMPAIGN });
      expect(r.errors).toBeUndefined();
      return r.data!.myEntry;
    });
    const disagreements: string[] = [];
    mine.forEach((m, i) => {
      const e = entries.get(userId(i));
      const g = gifts.get(userId(i));
      const table = e
        ? { ticket: e.ticket, position: e.position, status: e.status, gifticon: g ? { id: g.id, code: g.code } : null }
        : null;
      if (JSON.stringify(table) !== JSON.stringify(m))
        disagreements.push(`${userId(i)}: table ${JSON.stringify(table)} vs myEntry ${JSON.stringify(m)}`);
    });
    expect(disagreements.slice(0, 5)).toEqual([]);
    expect(mine.filter((m) => m !== null)).toHaveLength(entrants);
  });

  it('hold I1–I3: positions 1..entrants without gaps, winners 1..stock, one unique gifticon per winner, LOST beyond stock', async () => {
    const entries = await prisma.entry.findMany({ where: { campaignId: CAMPAIGN }, orderBy: { position: 'asc' } });
    expect(entries.map((e) => e.position)).toEqual(Array.from({ length: entrants }, (_, i) => i + 1));
    for (const e of entries) expect(e.status).toBe(e.position <= STOCK ? 'WON' : 'LOST');
    // log order: the positions follow the entries' offsets
    const offsets = entries.map((e) => e.logOffset);
    expect(offsets).toEqual([...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));

    const winners = await prisma.winner.findMany({ where: { campaignId: CAMPAIGN }, orderBy: { position: 'asc' } });
    expect(winners).toHaveLength(Math.min(STOCK, entrants)); // I1
    expect(winners.map((w) => w.position)).toEqual(Array.from({ length: STOCK }, (_, i) => i + 1));
    expect(winners.map((w) => w.userId)).toEqual(entries.slice(0, STOCK).map((e) => e.userId));

    const gifts = await prisma.gifticon.findMany({ where: { campaignId: CAMPAIGN } });
    expect(new Set(gifts.map((g) => g.userId))).toEqual(new Set(winners.map((w) => w.userId)));
    expect(new Set(gifts.map((g) => g.code)).size).toBe(gifts.length);

    const row = await prisma.campaign.findUniqueOrThrow({ where: { id: CAMPAIGN } });
    expect(row).toMatchObject({ entrants, winners: STOCK, stock: STOCK });
    expect(row.soldOutAt).toBeInstanceOf(Date);
    expect(row.firstEntryAt).toEqual(entries[0]!.enteredAt);
  });

  it('give every gifticon code once across all campaigns, as the API lists them and as the log holds them (I2)', async () => {
    const listed: { campaignId: string; code: string }[] = [];
    for (const c of [CAMPAIGN, ...Array.from({ length: EXTRA_WITH_CODES }, (_, i) => `rs-extra-${i}`)]) {
      const page = await waitUntil(
        () => walk<{ campaignId: string; code: string }>(GIFTICONS, { c }, 1000),
        (p) => p.nodes.length === (c === CAMPAIGN ? STOCK : extraStock(Number(c.split('-').at(-1)))),
        { what: `the gifticons of ${c} listed` },
      );
      listed.push(...page.nodes);
    }
    expect(listed).toHaveLength(STOCK + EXTRA_CODES);
    expect(new Set(listed.map((g) => g.campaignId)).size).toBe(1 + EXTRA_WITH_CODES);
    expect(new Set(listed.map((g) => g.code)).size).toBe(listed.length);
    // the oracle over the whole log: every campaign's own invariants, and no code issued twice anywhere
    const audit = await auditFromLog(iso.config, CAMPAIGN);
    expect(audit.problems).toEqual([]);
    const logged = audit.codes;
    expect(new Set(listed.filter((g) => g.campaignId === CAMPAIGN).map((g) => g.code))).toEqual(new Set(logged.values()));
  });

  it('agree with the Redis counters (Query.campaign) and the admin entry field', async () => {
    const c = await gql(app.port, admin, CAMPAIGN_Q, { id: CAMPAIGN });
    expect(c.data!.campaign).toEqual({ entrants, winners: STOCK, remaining: 0, status: 'SOLD_OUT' });
    const page = await gql<{ campaigns: Page<{ id: string; entrants: number; winners: number; remaining: number; status: string }> }>(
      app.port,
      admin,
      CAMPAIGNS,
      { first: 1000 },
    );
    expect(page.data!.campaigns.edges.find((e) => e.node.id === CAMPAIGN)!.node).toMatchObject({
      entrants,
      winners: STOCK,
      remaining: 0,
      status: 'SOLD_OUT',
    });
    const sample = await prisma.entry.findMany({ where: { campaignId: CAMPAIGN, position: { in: [1, STOCK, entrants] } } });
    for (const e of sample) {
      const r = await gql(app.port, admin, `query($c: ID!, $u: ID!) { entry(campaignId: $c, userId: $u) { ticket position status } }`, {
        c: CAMPAIGN,
        u: e.userId,
      });
      expect(r.data!.entry).toEqual({ ticket: e.ticket, position: e.position, status: e.status });
    }
  });

  it('walking each connection page by page meets every row exactly once, in order, and totalCount matches', async () => {
    const winners = await walk<{ userId: string; position: number; gifticon: { id: string; userId: string; code: string } | null }>(
      WINNERS,
      { c: CAMPAIGN },
      37,
    );
    expect(winners.pages).toBe(Math.ceil(STOCK / 37));
    expect(new Set(winners.totals)).toEqual(new Set([STOCK]));
    expect(winners.nodes.map((n) => n.position)).toEqual(Array.from({ length: STOCK }, (_, i) => i + 1));
    const gifts = new Map((await prisma.gifticon.findMany({ where: { campaignId: CAMPAIGN } })).map((g) => [g.userId, g]));
    for (const n of winners.nodes)
      expect(n.gifticon).toEqual({ id: gifts.get(n.userId)!.id, userId: n.userId, code: gifts.get(n.userId)!.code });

    const gifticons = await walk<{ id: string; userId: string; code: string; issuedAt: string }>(GIFTICONS, { c: CAMPAIGN }, 37);
    expect(new Set(gifticons.totals)).toEqual(new Set([STOCK]));
    expect(new Set(gifticons.nodes.map((n) => n.id)).size).toBe(STOCK);
    expect(new Set(gifticons.nodes.map((n) => n.id))).toEqual(new Set([...gifts.values()].map((g) => g.id)));
    // issue order: the writer issues in position order
    expect(gifticons.nodes.map((n) => n.userId)).toEqual(winners.nodes.map((n) => n.userId));

    const campaigns = await walk<{ id: string }>(CAMPAIGNS, {}, 7);
    expect(new Set(campaigns.totals)).toEqual(new Set([EXTRA_CAMPAIGNS + 1]));
    expect(campaigns.nodes).toHaveLength(EXTRA_CAMPAIGNS + 1);
    expect(new Set(campaigns.nodes.map((n) => n.id))).toEqual(
      new Set([CAMPAIGN, ...Array.from({ length: EXTRA_CAMPAIGNS }, (_, i) => `rs-extra-${i}`)]),
    );

    // default page sizes
    const d = await gql<{ winners: Page<unknown>; gifticons: Page<unknown>; campaigns: Page<unknown> }>(
      app.port,
      admin,
      `query($c: ID!) { winners(campaignId: $c) { edges { cursor } } gifticons(campaignId: $c) { edges { cursor } } campaigns { edges { cursor } } }`,
      { c: CAMPAIGN },
    );
    expect([d.data!.winners.edges.length, d.data!.gifticons.edges.length, d.data!.campaigns.edges.length]).toEqual([100, 100, 20]);
  });

  it('guards every admin field: FORBIDDEN for a user, UNAUTHENTICATED without a token', async () => {
    const user = tokens[0]!;
    const adminFields: [string, Record<string, unknown>][] = [
      [`{ campaigns { totalCount } }`, {}],
      [`query($c: ID!) { winners(campaignId: $c) { totalCount } }`, { c: CAMPAIGN }],
      [`query($c: ID!) { gifticons(campaignId: $c) { totalCount edges { node { code } } } }`, { c: CAMPAIGN }],
      [`query($c: ID!) { entry(campaignId: $c, userId: "rs-u1") { position } }`, { c: CAMPAIGN }],
      [`mutation { createCampaign(input: { title: "x", reward: "y", stock: 1, closesAt: "${inAnHour()}" }) { id } }`, {}],
      [`mutation($c: ID!) { closeCampaign(id: $c) { id } }`, { c: CAMPAIGN }],
    ];
    for (const [query, vars] of adminFields) {
      const asUser = await gql(app.port, user, query, vars);
      // nothing leaks: a nullable field comes back null, a non-null one nulls the whole data
      expect(
        Object.values(asUser.data ?? {}).every((v) => v === null),
        query,
      ).toBe(true);
      expect(
        asUser.errors?.map((e) => e.extensions?.code),
        query,
      ).toEqual(['FORBIDDEN']);
      const anonymous = await gql(app.port, null, query, vars);
      expect(
        anonymous.errors?.map((e) => e.extensions?.code),
        query,
      ).toEqual(['UNAUTHENTICATED']);
    }
    // the caller is checked before the arguments
    const bad = await gql(app.port, user, `{ winners(campaignId: "x", first: 0) { totalCount } }`);
    expect(bad.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('rejects first outside 1..1000 and a foreign or broken cursor as BAD_USER_INPUT naming the field', async () => {
    for (const first of [0, -1, 1001]) {
      for (const [query, vars] of [
        [CAMPAIGNS, {}],
        [WINNERS, { c: CAMPAIGN }],
        [GIFTICONS, { c: CAMPAIGN }],
      ] as const) {
        const r = await gql(app.port, admin, query, { ...vars, first });
        expect(r.errors?.map((e) => [e.extensions?.code, e.extensions?.field])).toEqual([['BAD_USER_INPUT', 'first']]);
      }
    }
    const w = await gql<{ winners: Page<unknown> }>(app.port, admin, WINNERS, { c: CAMPAIGN, first: 1 });
    const cursor = w.data!.winners.pageInfo.endCursor!;
    for (const [query, vars] of [
      [GIFTICONS, { c: CAMPAIGN, after: cursor }], // another list's cursor
      [WINNERS, { c: 'rs-extra-1', after: cursor }], // another campaign's cursor
      [WINNERS, { c: CAMPAIGN, after: 'garbage!' }],
      [CAMPAIGNS, { after: cursor }],
    ] as const) {
      const r = await gql(app.port, admin, query, vars);
      expect(r.errors?.map((e) => [e.extensions?.code, e.extensions?.field])).toEqual([['BAD_USER_INPUT', 'after']]);
    }
    const badId = await gql(app.port, admin, WINNERS, { c: 'Not An Id' });
    expect(badId.errors?.map((e) => [e.extensions?.code, e.extensions?.field])).toEqual([['BAD_USER_INPUT', 'campaignId']]);
    const none = await gql<{ winners: Page<unknown> }>(app.port, admin, WINNERS, { c: 'no-such-campaign' });
    expect(none.data!.winners).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
  });

  it('offers its lag to /metrics, and it is 0 once the log is quiet', async () => {
    const lagOf = async () => {
      const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      return [...text.matchAll(/^firstcome_projector_lag\{projection="prisma-tables",partition="(\d+)"\} (\d+)$/gm)].map(
        (m) => [m[1], Number(m[2])] as const,
      );
    };
    const lags = await eventually(lagOf, (l) => l.length === 2 && l.every(([, v]) => v === 0), 10_000);
    expect(lags.map(([p]) => p).sort()).toEqual(['0', '1']);
    expect(lags.every(([, v]) => v === 0)).toBe(true);
    // and the checkpoints reach the end of the log (past the writer's last transaction marker)
    const kafka = createKafka(iso.config, 'read-side-test');
    const kafkaAdmin = kafka.admin();
    await kafkaAdmin.connect();
    const ends = Object.fromEntries(
      (await kafkaAdmin.fetchTopicOffsets(iso.config.topics.events)).map((o) => [o.partition, BigInt(o.high)]),
    );
    await kafkaAdmin.disconnect();
    const read = async () =>
      Object.fromEntries(
        (await prisma.projectionCheckpoint.findMany({ where: { projection: 'prisma-tables', topic: iso.config.topics.events } })).map(
          (r) => [r.partition, r.nextOffset],
        ),
      );
    const atEnd = (c: Record<string, bigint>) =>
      Object.keys(c).length === Object.keys(ends).length && Object.entries(c).every(([p, next]) => ends[p] === next);
    expect(await eventually(read, atEnd, 5000)).toEqual(ends);
  });
});
