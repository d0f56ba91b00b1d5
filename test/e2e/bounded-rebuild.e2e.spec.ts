import { Redis } from 'ioredis';
import { Keys } from '../../projections/redis-ordering/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { PRISMA_PROJECTION } from '../../projections/prisma-tables/projector.js';
import { CLOCK_SLACK_MS } from '../../src/writer/rebuildBound.js';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { logEnds, waitUntil } from '../support/wait.js';
import { loseRedis } from '../support/redis.js';

/**
 * A flush with closed campaigns behind an open one, on one partition, with REDIS_RETENTION_HOURS=0
 * (a closed campaign is past retention at once) and no worker (cleanup does not remove them first).
 * The writer's rebuild starts at the open campaign: the closed ones are not replayed into Redis, and
 * their campaign, myEntry and entry are answered from the Postgres read model, as before the flush.
 */
const OLD = ['old-a', 'old-b'];
const OPEN = 'open';
const OLD_USERS = 8;
const OLD_STOCK = 3;
const OPEN_USERS = 300;
const OPEN_STOCK = 100;

const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { ticket } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { ticket position status gifticon { code } } }`;
const ENTRY = `query($c: ID!, $u: ID!) { entry(campaignId: $c, userId: $u) { ticket position status gifticon { code } } }`;
const CAMPAIGN = `query($c: ID!) { campaign(id: $c) { id status entrants winners remaining } }`;

let iso: Isolated;
let app: AppProcess;
let prisma: PrismaClient;
let admin: string;

const user = (c: string, i: number) => `${c}-u${i}`;
const users = (c: string) => Array.from({ length: c === OPEN ? OPEN_USERS : OLD_USERS }, (_, i) => user(c, i));

async function campaignKeys(c: string): Promise<number> {
  const redis = new Redis(iso.config.REDIS_URL);
  try {
    return (await redis.keys(new Keys(iso.config.REDIS_PREFIX).pattern(c))).length;
  } finally {
    redis.disconnect();
  }
}

/** What the API answers now, for every user of a campaign: myEntry as the user, entry as an admin. */
async function answers(c: string): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  await pool(users(c), 16, async (u) => {
    const [mine, theirs] = await Promise.all([gql(app.port, await token(u), MY, { c }), gql(app.port, admin, ENTRY, { c, u })]);
    out.set(u, { mine: mine.errors ?? mine.data!.myEntry, admin: theirs.errors ?? theirs.data!.entry });
  });
  return out;
}

beforeAll(async () => {
  iso = await isolated('bounded_rebuild', { EVENT_PARTITIONS: '1', REDIS_RETENTION_HOURS: '0' });
  app = await spawnApp(iso, 'api,writer,projector');
  prisma = createPrisma(iso.config.DATABASE_URL, { poolSize: 2 });
  admin = await token('boss', 'admin');
}, 120_000);
afterAll(async () => {
  await app?.kill('SIGTERM');
  await prisma?.$disconnect();
  await iso?.cleanup();
});

describe('a flush with closed campaigns behind an open one', () => {
  it('rebuilds only the open campaign; the closed ones are answered from Postgres, as before the flush', async () => {
    const closesAt = new Date(Date.now() + 3_600_000).toISOString();
    for (const c of OLD) {
      expect(
        (await gql(app.port, admin, CREATE, { i: { id: c, title: c, reward: 'r', stock: OLD_STOCK, closesAt } })).errors,
      ).toBeUndefined();
      await pool(users(c), 8, async (u) => expect((await gql(app.port, await token(u), ENTER, { c })).errors).toBeUndefined());
      expect((await gql(app.port, admin, `mutation($c: ID!) { closeCampaign(id: $c) { status } }`, { c })).data!.closeCampaign.status).toBe(
        'CLOSED',
      );
    }
    // the bound looks up the open campaign's creation time in the log's time index, less a clock slack:
    // records of the closed campaigns within that slack would be replayed too, so the open one comes later
    const closedAt = Date.now();
    await waitUntil(
      async () => Date.now(),
      (now) => now > closedAt + CLOCK_SLACK_MS + 200,
      { what: 'the clock slack passed' },
    );
    expect(
      (await gql(app.port, admin, CREATE, { i: { id: OPEN, title: OPEN, reward: 'r', stock: OPEN_STOCK, closesAt } })).errors,
    ).toBeUndefined();
    await pool(users(OPEN), 32, async (u) => expect((await gql(app.port, await token(u), ENTER, { c: OPEN })).errors).toBeUndefined());

    // every decision made, and the read model caught up with the log
    const audits = new Map(
      await Promise.all(
        [...OLD, OPEN].map(
          async (c) =>
            [
              c,
              await waitUntil(
                () => auditFromLog(iso.config, c),
                (a) => a.gifticons === Math.min(a.stock, a.entrants) && a.winners === a.gifticons,
                { what: `${c} decided`, timeoutMs: 60_000 },
              ),
            ] as const,
        ),
      ),
    );
    const end = (await logEnds(iso.config)).get(0)!;
    await waitUntil(
      () =>
        prisma.projectionCheckpoint.findFirst({ where: { projection: PRISMA_PROJECTION, topic: iso.config.topics.events, partition: 0 } }),
      (cp) => cp !== null && cp.nextOffset >= end - 1n,
      { what: 'the read model caught up', timeoutMs: 60_000 },
    );
    const before = new Map(await Promise.all([...OLD, OPEN].map(async (c) => [c, await answers(c)] as const)));
    const campaignsBefore = await Promise.all([...OLD, OPEN].map((c) => gql(app.port, admin, CAMPAIGN, { c })));
    // from Redis, as the log decided: the winners hold their codes
    for (const c of OLD) {
      const codes = audits.get(c)!.codes;
      expect(codes.size).toBe(OLD_STOCK);
      for (const [u, code] of codes) expect(before.get(c)!.get(u)).toMatchObject({ mine: { status: 'WON', gifticon: { code } } });
    }

    expect(await loseRedis(iso.config)).toBeGreaterThan(0);
    // until the rebuild is done: UNAVAILABLE, never an answer
    const refusals = new Set<string | undefined>();
    const during = await waitUntil(
      async () => gql(app.port, await token(user(OPEN, 0)), MY, { c: OPEN }),
      (r) => (r.errors?.forEach((e) => refusals.add(e.extensions?.code)), !r.errors),
      { what: 'the open campaign readable again', timeoutMs: 60_000, everyMs: 20 },
    );
    expect([...refusals].filter((c) => c !== 'UNAVAILABLE')).toEqual([]);
    expect(during.data!.myEntry).toEqual((before.get(OPEN)!.get(user(OPEN, 0)) as { mine: unknown }).mine);

    // the closed campaigns were not replayed into Redis: the rebuild started past their records
    for (const c of OLD) expect(await campaignKeys(c)).toBe(0);
    expect(await campaignKeys(OPEN)).toBeGreaterThan(0);
    const lastOld = Math.max(...OLD.flatMap((c) => audits.get(c)!.log.map((l) => Number(l.offset))));
    const rebuild = app
      .output()
      .split('\n')
      .filter((l) => l.includes('Redis projection missing'))
      .map((l) => JSON.parse(l) as { from: string; until: string });
    expect(rebuild.length).toBeGreaterThan(0);
    expect(Number(rebuild.at(-1)!.from)).toBeGreaterThan(lastOld);

    // every user of every campaign reads what they read before the flush: the closed ones from Postgres
    for (const c of [...OLD, OPEN]) expect(await answers(c)).toEqual(before.get(c));
    const campaignsAfter = await Promise.all([...OLD, OPEN].map((c) => gql(app.port, admin, CAMPAIGN, { c })));
    expect(campaignsAfter).toEqual(campaignsBefore);
    expect(campaignsAfter.map((r) => r.data!.campaign.status)).toEqual(['CLOSED', 'CLOSED', 'SOLD_OUT']);
    // a campaign that never was is still unknown
    expect((await gql(app.port, admin, CAMPAIGN, { c: 'never-was' })).data!.campaign).toBeNull();

    // and the open campaign goes on from its rebuilt line: sold out to a newcomer, the same ticket to a second click
    const late = await gql(app.port, await token('late'), ENTER, { c: OPEN });
    expect(late.data!.enter).toEqual({ rejection: 'SOLD_OUT', entry: null });
    const again = await gql(app.port, await token(user(OPEN, 5)), ENTER, { c: OPEN });
    expect(again.data!.enter.entry.ticket).toBe((before.get(OPEN)!.get(user(OPEN, 5)) as { mine: { ticket: string } }).mine.ticket);
    const audit = await auditFromLog(iso.config, OPEN);
    expect(audit.problems).toEqual([]);
  });
});
