import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_VERSION, issuanceParked, SEALED_GIFTICON_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { applyBatch, isDataError, rewindPrismaProjection, type ApplyStats } from '../../projections/prisma-tables/projector.js';
import { listenForRewinds } from '../../projections/prisma-tables/rewinds.js';
import { readModelArchive } from '../../projections/prisma-tables/archive.js';
import { dropDatabase, ensureDatabase } from '../../src/infra/prisma/database.js';
import { migrate } from '../../src/infra/prisma/migrate.js';
import { freshDatabase, type FreshDatabase } from '../support/db.js';
import { elapse, waitUntil } from '../support/wait.js';

/**
 * The Prisma tables' batch writer against a real Postgres, without Kafka: what one transaction of
 * the projector writes for a batch, read back from the tables.
 */
const at = new Date().toISOString();
const base = (campaignId: string) => ({ version: EVENT_VERSION, campaignId, occurredAt: at }) as const;
const created = (id: string, stock: number): CampaignEvent => ({
  ...base(id),
  type: 'CampaignCreated',
  eventId: `created:${id}`,
  title: id,
  reward: 'r',
  stock,
  opensAt: at,
  closesAt: new Date(Date.now() + 3_600_000).toISOString(),
});
const entrant = (id: string, userId: string): CampaignEvent => ({
  ...base(id),
  type: 'EntrantRegistered',
  eventId: `entrant:${id}:${userId}:${Math.random()}`,
  userId,
});
const winner = (id: string, userId: string, position: number): CampaignEvent => ({
  ...base(id),
  type: 'WinnerSelected',
  eventId: `winner:${id}:${userId}`,
  userId,
  position,
  ticket: `0-${position}`,
});
const gifticon = (id: string, userId: string, position: number): CampaignEvent => ({
  ...base(id),
  type: 'GifticonIssued',
  eventId: `gifticon:${id}:${userId}`,
  userId,
  gifticonId: `g-${id}-${userId}`,
  code: `code-${id}-${userId}`,
  position,
});

let offset = 0n;
const logged = (events: CampaignEvent[]): Logged[] => events.map((event) => ({ event, partition: 0, offset: offset++ }));

let db: FreshDatabase;
let prisma: PrismaClient;
const apply = (events: CampaignEvent[]) => prisma.$transaction((tx) => applyBatch(tx, logged(events)));
const entries = async (campaignId: string) =>
  (await prisma.entry.findMany({ where: { campaignId }, orderBy: { position: 'asc' } })).map((e) => [e.userId, e.position, e.status]);

beforeAll(async () => {
  db = await freshDatabase('prisma_tables');
  prisma = createPrisma(db.url, { poolSize: 2 });
});

afterAll(async () => {
  await prisma?.$disconnect();
  await db?.drop();
});

describe('the Prisma tables, one batch at a time', () => {
  it('places new users after those the tables hold, and skips users placed by an earlier batch', async () => {
    expect(await apply([created('c1', 2), entrant('c1', 'a'), entrant('c1', 'b')])).toBe(2);
    expect(await apply([entrant('c1', 'b'), entrant('c1', 'c'), entrant('c1', 'a'), entrant('c1', 'd')])).toBe(2);
    expect(await entries('c1')).toEqual([
      ['a', 1, 'WON'],
      ['b', 2, 'WON'],
      ['c', 3, 'LOST'],
      ['d', 4, 'LOST'],
    ]);
    expect((await prisma.campaign.findUniqueOrThrow({ where: { id: 'c1' } })).entrants).toBe(4);
  });

  it('counts a winner once when its events are applied again, and writes each gifticon once', async () => {
    await apply([winner('c1', 'a', 1), gifticon('c1', 'a', 1), winner('c1', 'b', 2)]);
    await apply([winner('c1', 'a', 1), gifticon('c1', 'a', 1), winner('c1', 'b', 2), gifticon('c1', 'b', 2)]);
    expect((await prisma.campaign.findUniqueOrThrow({ where: { id: 'c1' } })).winners).toBe(2);
    expect(
      (await prisma.gifticon.findMany({ where: { campaignId: 'c1' }, orderBy: { logOffset: 'asc' } })).map((g) => [g.userId, g.code]),
    ).toEqual([
      ['a', 'code-c1-a'],
      ['b', 'code-c1-b'],
    ]);
  });

  it("keeps a PROVIDER winner's last parking and its voucher's expiry, as the archive's entry reads them", async () => {
    const [t1, t2, exp] = ['2026-12-06T10:00:00.000Z', '2026-12-06T10:05:00.000Z', '2027-03-06T10:00:00.000Z'];
    const w = { campaignId: 'pv', userId: 'a', position: 1 };
    // the winner and its first parking in one batch (the UPDATE follows the INSERT), the second parking later
    await apply([
      created('pv', 2),
      entrant('pv', 'a'),
      entrant('pv', 'b'),
      winner('pv', 'a', 1),
      winner('pv', 'b', 2),
      issuanceParked(w, 'issuer:pv:1', '3', new Date(t1)),
      issuanceParked({ ...w, userId: 'b', position: 2 }, 'issuer:pv:2', '4', new Date(t1)),
    ]);
    await apply([issuanceParked(w, 'issuer:pv:1', '9', new Date(t2)), issuanceParked(w, 'issuer:pv:1', '3', new Date(t1))]);
    await apply([
      {
        ...base('pv'),
        type: 'GifticonIssued',
        version: SEALED_GIFTICON_VERSION,
        eventId: 'gifticon:pv:b',
        userId: 'b',
        gifticonId: 'g-pv-b',
        sealedCode: 'k1:sealed-b',
        position: 2,
        voucherId: 'v-b',
        expiresAt: exp,
      },
    ]);
    const parkedAt = async (userId: string) =>
      (
        await prisma.winner.findUniqueOrThrow({ where: { campaignId_userId: { campaignId: 'pv', userId } } })
      ).issuanceParkedAt?.toISOString();
    expect([await parkedAt('a'), await parkedAt('b')]).toEqual([t2, t1]);
    const archive = readModelArchive(prisma, 1);
    expect(await archive.entry('pv', 'a')).toMatchObject({ gifticon: null, issuanceParkedAt: t2 });
    // issued after its parking: the gifticon, with the provider's expiry, and no parking to read
    expect(await archive.entry('pv', 'b')).toMatchObject({ gifticon: { id: 'g-pv-b', expiresAt: exp }, issuanceParkedAt: null });
  });

  it("writes the log's next entries without looking their users up, and a user's second entry falls back to the lookup", async () => {
    const stats: ApplyStats = { lookups: 0, retries: 0 };
    const applyCounted = (batch: Logged[]) => prisma.$transaction((tx) => applyBatch(tx, batch, stats));
    expect(await applyCounted(logged([created('c2', 3), entrant('c2', 'a'), entrant('c2', 'b')]))).toBe(2);
    const next = logged([entrant('c2', 'c'), entrant('c2', 'd')]);
    expect(await applyCounted(next)).toBe(2);
    expect(stats).toEqual({ lookups: 0, retries: 0 });

    // 'a' again, after its entry: the insert is refused, and the batch is written again with the lookup
    expect(await applyCounted(logged([entrant('c2', 'e'), entrant('c2', 'a'), entrant('c2', 'f')]))).toBe(2);
    expect(stats).toEqual({ lookups: 1, retries: 1 });
    expect(await entries('c2')).toEqual([
      ['a', 1, 'WON'],
      ['b', 2, 'WON'],
      ['c', 3, 'WON'],
      ['d', 4, 'LOST'],
      ['e', 5, 'LOST'],
      ['f', 6, 'LOST'],
    ]);
    expect((await prisma.campaign.findUniqueOrThrow({ where: { id: 'c2' } })).entrants).toBe(6);

    // the same records applied again (another campaign of the partition replayed): looked up at once, nothing written
    expect(await applyCounted(next)).toBe(0);
    expect(stats).toEqual({ lookups: 2, retries: 1 });
    expect((await prisma.campaign.findUniqueOrThrow({ where: { id: 'c2' } })).entrants).toBe(6);
  });

  it('stops at an entry the checkpoint has not seen, writing nothing of the batch, and does not call it a data error', async () => {
    // a row written behind the projector's back, at the position the next entrant would get
    await prisma.entry.create({
      data: { campaignId: 'c1', userId: 'stray', ticket: '0-999', position: 5, status: 'LOST', logOffset: 999n, enteredAt: new Date() },
    });
    const err = await apply([entrant('c1', 'e'), entrant('c1', 'f')]).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/already present beyond the checkpoint/);
    expect(isDataError(err)).toBe(false);
    expect((await entries('c1')).map(([u]) => u)).toEqual(['a', 'b', 'c', 'd', 'stray']);
    expect((await prisma.campaign.findUniqueOrThrow({ where: { id: 'c1' } })).entrants).toBe(4);
  });
});

describe('rewinds, heard as they commit', () => {
  it("calls the listener of the rewound topic when the rewind commits, and not another topic's", async () => {
    const heard: string[] = [];
    const stops = await Promise.all(['events-a', 'events-b'].map((topic) => listenForRewinds(db.url, topic, () => heard.push(topic))));
    try {
      await rewindPrismaProjection(prisma, 'events-a', null);
      await waitUntil(
        async () => heard.length,
        (n) => n > 0,
        { what: 'the rewind of events-a heard', timeoutMs: 5_000, everyMs: 20 },
      );
      await elapse(200, "a notice for b would have come in the same delivery as a's");
      expect(heard).toEqual(['events-a']);
      // rolled back: nothing is heard
      await prisma
        .$transaction(async (tx) => {
          await tx.$executeRaw`SELECT pg_notify('firstcome_projection_rewind', 'events-b')`;
          throw new Error('rolled back');
        })
        .catch(() => undefined);
      await elapse(300, 'a notice of the rolled-back transaction would have come by now');
      expect(heard).toEqual(['events-a']);
    } finally {
      for (const stop of stops) await stop();
    }
  });

  it('keeps trying when the database cannot be had at start, and hears rewinds once it can', async () => {
    const later = new URL(db.url);
    later.pathname = `${later.pathname}_later`;
    const url = later.toString();
    let heard = 0;
    const until = (n: number) =>
      waitUntil(
        async () => heard,
        (h) => h >= n,
        { what: `${n} rewinds heard`, timeoutMs: 10_000, everyMs: 20 },
      );
    // the database does not exist yet: the first attempt fails, and the listener does not give up
    const stop = await listenForRewinds(url, 'events-later', () => heard++);
    try {
      await ensureDatabase(url);
      await migrate(url);
      // connected: told once, for a rewind that may have committed while it was away
      await until(1);
      expect(heard).toBe(1);
      const other = createPrisma(url, { poolSize: 1 });
      try {
        await rewindPrismaProjection(other, 'events-later', null);
        await until(2);
        expect(heard).toBe(2);
      } finally {
        await other.$disconnect();
      }
    } finally {
      await stop();
      await dropDatabase(url);
    }
  });
});
