import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog } from '../../src/domain/audit.js';
import { replay } from '../../src/domain/campaign.js';
import { storedCodeOf, type Logged } from '../../src/domain/events.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { PRISMA_PROJECTION, rewindPrismaProjection } from '../../projections/index.js';
import { eventually, gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { logEnds, waitUntil, whenCaughtUp } from '../support/wait.js';

/**
 * The Prisma projector as a process of its own, against the real broker and Postgres: SIGKILLed in
 * the middle of a burst and started again, it neither doubles nor loses a row; rewound by a replay
 * (one campaign, then everything) it rebuilds the same tables from the log, leaving the other
 * campaigns of the partition as they were. The expected tables are computed from the log itself
 * with the pure decider.
 */
const PARTITIONS = 2;
const A = 'pj-a'; // the drop: 2,000 users with duplicate clicks, stock 300
const B = sameOrOtherPartition(A, true, 'pj-b'); // same partition as A: a long line that stays open
const C = sameOrOtherPartition(A, false, 'pj-c'); // the other partition
const PLAN: Record<string, { users: number; stock: number }> = {
  [A]: { users: 2000, stock: 300 },
  [B]: { users: 700, stock: 5000 },
  [C]: { users: 300, stock: 100 },
};

function sameOrOtherPartition(of: string, same: boolean, prefix: string): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    if ((partitionFor(id, PARTITIONS) === partitionFor(of, PARTITIONS)) === same) return id;
  }
}

let iso: Isolated;
let writer: AppProcess;
let projector: AppProcess;
let prisma: PrismaClient;
const killedAt: { entries: number; calls: number } = { entries: -1, calls: -1 };

const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { position } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;

interface Expected {
  entries: Map<string, { userId: string; position: number; ticket: string; status: string }[]>;
  winners: { campaignId: string; userId: string; position: number }[];
  gifticons: { id: string; campaignId: string; userId: string; code: string; logOffset: bigint }[];
  ends: Map<number, bigint>;
}

async function expectedFromLog(): Promise<Expected> {
  const kafka = createKafka(iso.config, 'projector-test');
  const readAll = async () => {
    const log: Logged[] = [];
    await readLog(kafka, iso.config.topics.events, (batch) => void log.push(...batch));
    return log;
  };
  // the writer may still be deciding: wait until every entrant of the log is decided (I1 holds in
  // every campaign) and the writer's group has read the log to its end, so nothing more is coming
  await waitUntil(
    async () =>
      [...auditLog(await readAll()).campaigns.values()].map((a) => ({
        winners: a.winners,
        gifticons: a.gifticons,
        due: Math.min(a.stock, a.entrants),
      })),
    (cs) => cs.length === Object.keys(PLAN).length && cs.every((c) => c.winners === c.due && c.gifticons === c.due),
    { what: 'every entrant decided', timeoutMs: 60_000 },
  );
  await whenCaughtUp(iso.config, iso.config.groups.writer, { oneShort: true });
  const ends = await logEnds(iso.config);
  const log = await readAll();
  const entries = new Map<string, { userId: string; position: number; ticket: string; status: string }[]>();
  for (const id of Object.keys(PLAN)) {
    const state = replay(log.filter((l) => l.event.campaignId === id));
    const stock = state.terms!.stock;
    entries.set(
      id,
      [...state.places]
        .map(([userId, p]) => ({ userId, position: p.position, ticket: p.ticket, status: p.position <= stock ? 'WON' : 'LOST' }))
        .sort((x, y) => x.position - y.position),
    );
  }
  const winners = log.flatMap((l) =>
    l.event.type === 'WinnerSelected' ? [{ campaignId: l.event.campaignId, userId: l.event.userId, position: l.event.position }] : [],
  );
  const gifticons = log.flatMap((l) =>
    l.event.type === 'GifticonIssued'
      ? [
          {
            id: l.event.gifticonId,
            campaignId: l.event.campaignId,
            userId: l.event.userId,
            code: storedCodeOf(l.event),
            logOffset: l.offset,
          },
        ]
      : [],
  );
  return { entries, winners, gifticons, ends };
}

/** Everything the projection holds, in a comparable form (updated_at aside). */
async function snapshot(campaignId?: string) {
  const where = campaignId ? { campaignId } : {};
  return {
    campaigns: (await prisma.campaign.findMany({ where: campaignId ? { id: campaignId } : {}, orderBy: { id: 'asc' } })).map(
      ({ updatedAt: _, ...c }) => c,
    ),
    entries: await prisma.entry.findMany({ where, orderBy: [{ campaignId: 'asc' }, { position: 'asc' }] }),
    winners: await prisma.winner.findMany({ where, orderBy: [{ campaignId: 'asc' }, { position: 'asc' }] }),
    gifticons: await prisma.gifticon.findMany({ where, orderBy: [{ campaignId: 'asc' }, { logOffset: 'asc' }] }),
  };
}

const checkpoints = async () =>
  new Map(
    (await prisma.projectionCheckpoint.findMany({ where: { projection: PRISMA_PROJECTION, topic: iso.config.topics.events } })).map((r) => [
      r.partition,
      r.nextOffset,
    ]),
  );

let expected: Expected;

beforeAll(async () => {
  iso = await isolated('projector_int', { EVENT_PARTITIONS: String(PARTITIONS) });
  [writer, projector] = await Promise.all([spawnApp(iso, 'api,writer'), spawnApp(iso, 'projector')]);
  prisma = createPrisma(iso.env.DATABASE_URL!);
  const admin = await token('pj-admin', 'admin');
  const closesAt = new Date(Date.now() + 3_600_000).toISOString();
  for (const [id, { stock }] of Object.entries(PLAN)) {
    const r = await gql(writer.port, admin, CREATE, { i: { id, title: id, reward: 'Gifticon', stock, closesAt } });
    expect(r.errors).toBeUndefined();
  }

  // the burst: every campaign's crowd interleaved, every 4th user of each clicking twice
  const calls: { campaign: string; user: string }[] = [];
  for (const [id, { users }] of Object.entries(PLAN)) {
    for (let i = 0; i < users; i++) for (let k = 0; k < (i % 4 === 0 ? 2 : 1); k++) calls.push({ campaign: id, user: `${id}-u${i}` });
  }
  for (let i = calls.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [calls[i], calls[j]] = [calls[j]!, calls[i]!];
  }
  const tokens = new Map<string, string>();
  for (const c of calls) if (!tokens.has(c.user)) tokens.set(c.user, await token(c.user));
  let done = 0;
  let restarted: Promise<AppProcess> | null = null;
  await pool(calls, 50, async ({ campaign, user }) => {
    const r = await gql(writer.port, tokens.get(user)!, ENTER, { c: campaign });
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    done++;
    if (done === Math.floor(calls.length * 0.35)) {
      killedAt.calls = done;
      killedAt.entries = await prisma.entry.count();
      await projector.kill('SIGKILL');
    }
    if (done === Math.floor(calls.length * 0.6)) restarted = spawnApp(iso, 'projector');
  });
  projector = await restarted!;
  console.log(`projector SIGKILLed after ${killedAt.calls} of ${calls.length} enter calls, ${killedAt.entries} entries projected by then`);
  expected = await expectedFromLog();
}, 300_000);

afterAll(async () => {
  await prisma?.$disconnect();
  await Promise.all([writer, projector].filter(Boolean).map((p) => p.kill('SIGTERM')));
  await iso?.cleanup();
});

/** The projection caught up: its checkpoints (kept with its rows) reach the end the log had when quiet. */
async function untilTablesMatch(): Promise<Awaited<ReturnType<typeof snapshot>>> {
  await waitUntil(checkpoints, (m) => [...expected.ends].every(([p, end]) => m.get(p) === end), {
    what: `the projector's checkpoints at the log's end ${JSON.stringify(Object.fromEntries([...expected.ends].map(([p, e]) => [p, String(e)])))}`,
    timeoutMs: 60_000,
  });
  return snapshot();
}

function expectTablesAsTheLogSays(s: Awaited<ReturnType<typeof snapshot>>): void {
  for (const [id, rows] of expected.entries) {
    const mine = s.entries
      .filter((e) => e.campaignId === id)
      .map((e) => ({ userId: e.userId, position: e.position, ticket: e.ticket, status: e.status }));
    expect(mine.length, id).toBe(rows.length);
    expect(mine, id).toEqual(rows);
    const c = s.campaigns.find((x) => x.id === id)!;
    expect(c.entrants, id).toBe(rows.length); // a batch applied twice would count twice
    expect(c.winners, id).toBe(Math.min(PLAN[id]!.stock, rows.length));
  }
  expect(s.winners.map((w) => ({ campaignId: w.campaignId, userId: w.userId, position: w.position })).sort(byKey)).toEqual(
    [...expected.winners].sort(byKey),
  );
  expect(
    s.gifticons.map((g) => ({ id: g.id, campaignId: g.campaignId, userId: g.userId, code: g.code, logOffset: g.logOffset })).sort(byKey),
  ).toEqual([...expected.gifticons].sort(byKey));
}
const byKey = (x: { campaignId: string; userId: string }, y: { campaignId: string; userId: string }) =>
  `${x.campaignId}/${x.userId}`.localeCompare(`${y.campaignId}/${y.userId}`);

describe('Prisma projector against the real log', () => {
  it('killed with SIGKILL mid-burst and restarted: every row once, none missing, counters exact', async () => {
    expect(killedAt.calls).toBeGreaterThan(0);
    const s = await untilTablesMatch();
    expect(killedAt.entries).toBeLessThan(s.entries.length); // it really was killed with work to do
    expect(PLAN[A]!.users).toBeGreaterThanOrEqual(2000);
    expectTablesAsTheLogSays(s);
    // the checkpoints reach the end of the log, past the writer's last transaction marker
    const cps = await eventually(checkpoints, (m) => [...expected.ends].every(([p, end]) => m.get(p) === end), 10_000);
    expect(Object.fromEntries(cps)).toEqual(Object.fromEntries(expected.ends));
  });

  it('rewound for one campaign (a replay), rebuilds it the same, codes included; the other campaign of the partition is left as it was', async () => {
    const before = await untilTablesMatch();
    const bBefore = await snapshot(B);
    const r = await rewindPrismaProjection(prisma, iso.config.topics.events, A, { partitions: PARTITIONS });
    expect(r.partitions).toEqual([partitionFor(A, PARTITIONS)]);
    const other = partitionFor(C, PARTITIONS);
    expect((await checkpoints()).get(other)).toBe(expected.ends.get(other)); // the other partition is not rewound
    expect(await prisma.entry.count({ where: { campaignId: A } })).toBeLessThan(before.entries.filter((e) => e.campaignId === A).length);

    const after = await untilTablesMatch();
    expect(after).toEqual(before);
    expect(await snapshot(B)).toEqual(bBefore);
  });

  it('rewound entirely, rebuilds every table the same', async () => {
    const before = await untilTablesMatch();
    const r = await rewindPrismaProjection(prisma, iso.config.topics.events, null);
    expect(r.partitions.sort()).toEqual([0, 1]);
    expect(await prisma.entry.count()).toBeLessThan(before.entries.length);
    const after = await untilTablesMatch();
    expect(after).toEqual(before);
    expectTablesAsTheLogSays(after);
    const text = await (await fetch(`http://127.0.0.1:${projector.port}/metrics`)).text();
    expect(text).toMatch(/^firstcome_projector_rewinds_total [1-9]/m);
  });
});
