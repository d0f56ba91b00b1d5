import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keys } from '../../projections/redis-ordering/index.js';
import { auditFromLog } from '../support/audit.js';
import { eventually, gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { elapse, waitUntil } from '../support/wait.js';

/**
 * The drop end to end: a crowd with duplicate clicks over TWO API processes, a separate writer,
 * the real broker and Redis. Checks CONTRACT.md's promises and invariants I1–I3 against the log.
 */
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { ticket position status gifticon { code } } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { ticket position status gifticon { code } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id status stock entrants winners remaining } }`;
const CAMPAIGN = `query($id: ID!) { campaign(id: $id) { id status stock entrants winners remaining } }`;

type EnterAnswer = {
  rejection: string | null;
  entry: { ticket: string; position: number | null; status: string; gifticon: { code: string } | null } | null;
};

let iso: Isolated;
let writer: AppProcess;
let apis: AppProcess[];
let admin: string;

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

async function createCampaign(id: string, stock: number, extra: Record<string, unknown> = {}) {
  const r = await gql(apis[0]!.port, admin, CREATE, {
    i: { id, title: `Drop ${id}`, reward: 'Chicken gifticon', stock, closesAt: inAnHour(), ...extra },
  });
  expect(r.errors).toBeUndefined();
  return r.data!.createCampaign;
}

/** Users u0..u(n-1); every 5th clicks twice, the second click on the other API at the same time. */
async function crowd(campaign: string, n: number, onProgress?: (done: number) => Promise<void> | void) {
  const tokens = await Promise.all(Array.from({ length: n }, (_, i) => token(`${campaign}-u${i}`)));
  const calls: { user: number; api: number }[] = [];
  for (let i = 0; i < n; i++) {
    calls.push({ user: i, api: i % 2 });
    if (i % 5 === 0) calls.push({ user: i, api: (i + 1) % 2 });
  }
  const answers = new Map<number, EnterAnswer[]>();
  let done = 0;
  await pool(calls, 64, async ({ user, api }) => {
    const r = await gql<{ enter: EnterAnswer }>(apis[api]!.port, tokens[user]!, ENTER, { c: campaign });
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    answers.set(user, [...(answers.get(user) ?? []), r.data!.enter]);
    if (++done % 50 === 0) await onProgress?.(done);
  });
  return { tokens, answers };
}

beforeAll(async () => {
  iso = await isolated('drop');
  writer = await spawnApp(iso, 'writer');
  apis = await Promise.all([spawnApp(iso, 'api'), spawnApp(iso, 'api')]);
  admin = await token('boss', 'admin');
});

afterAll(async () => {
  await Promise.all([writer, ...(apis ?? [])].filter(Boolean).map((p) => p.kill('SIGTERM')));
  await iso?.cleanup();
});

describe('the drop over two API processes', () => {
  let tokens: string[];
  let answers: Map<number, EnterAnswer[]>;
  const C = 'crowd';
  const STOCK = 300;
  const USERS = 2000;

  beforeAll(async () => {
    await createCampaign(C, STOCK);
    ({ tokens, answers } = await crowd(C, USERS));
  });

  it('holds I1–I3 in the log: exactly the first 300 distinct users won, one gifticon each', async () => {
    const audit = await eventually(
      () => auditFromLog(iso.config, C),
      (a) => a.winners >= STOCK && a.gifticons >= STOCK,
    );
    expect(audit.problems).toEqual([]);
    expect(audit.winners).toBe(STOCK);
    expect(audit.gifticons).toBe(STOCK);
    expect(audit.entrants).toBeGreaterThanOrEqual(STOCK);
  });

  it('gives a duplicate click the same ticket, and never an entry to a rejected call', async () => {
    const audit = await auditFromLog(iso.config, C);
    let duplicates = 0;
    for (const [user, list] of answers) {
      const entries = list.filter((a) => a.entry).map((a) => a.entry!);
      const place = audit.state.places.get(`${C}-u${user}`);
      if (entries.length === 0) {
        expect(list.every((a) => a.rejection === 'SOLD_OUT')).toBe(true);
        expect(place, `user ${user} was only rejected yet has a place`).toBeUndefined();
        continue;
      }
      if (entries.length > 1) duplicates++;
      expect(new Set(entries.map((e) => e.ticket)).size, `user ${user} got two tickets`).toBe(1);
      expect(place, `user ${user} got an entry that the log does not place`).toBeDefined();
      expect(entries[0]!.ticket).toBe(place!.ticket);
      for (const e of entries) {
        if (e.status === 'QUEUED') continue;
        expect(e.position).toBe(place!.position);
        expect(e.status).toBe(place!.position <= STOCK ? 'WON' : 'LOST');
      }
    }
    expect(duplicates).toBeGreaterThan(50);
  });

  it('answers myEntry for every user as the log decided it: WON iff position <= stock, with the issued code', async () => {
    const audit = await auditFromLog(iso.config, C);
    const codes = audit.codes;
    await pool([...answers.keys()], 32, async (user) => {
      const r = await gql(apis[user % 2]!.port, tokens[user]!, MY, { c: C });
      const place = audit.state.places.get(`${C}-u${user}`);
      if (!place) return expect(r.data!.myEntry).toBeNull();
      expect(r.data!.myEntry).toEqual({
        ticket: place.ticket,
        position: place.position,
        status: place.position <= STOCK ? 'WON' : 'LOST',
        gifticon: place.position <= STOCK ? { code: codes.get(`${C}-u${user}`) } : null,
      });
    });
    const c = await gql(apis[1]!.port, admin, CAMPAIGN, { id: C });
    expect(c.data!.campaign).toEqual({ id: C, status: 'SOLD_OUT', stock: STOCK, entrants: audit.entrants, winners: STOCK, remaining: 0 });
  });

  it('rebuilds the ordering from the log after Redis loses it, never answering wrong meanwhile', async () => {
    const audit = await auditFromLog(iso.config, C);
    const redis = new Redis(iso.config.REDIS_URL);
    const keys = await redis.keys(new Keys(iso.config.REDIS_PREFIX).all());
    await redis.del(...keys); // one command: as sudden as a flush
    redis.disconnect();
    const sample = [...answers.keys()].filter((u) => u % 7 === 0);
    let unavailable = 0;
    const settled = new Set<number>();
    const deadline = Date.now() + 60_000;
    while (settled.size < sample.length && Date.now() < deadline) {
      await pool(
        sample.filter((u) => !settled.has(u)),
        16,
        async (user) => {
          const r = await gql(apis[user % 2]!.port, tokens[user]!, MY, { c: C });
          if (r.errors) {
            expect(r.errors[0]!.extensions?.code).toBe('UNAVAILABLE');
            unavailable++;
            return;
          }
          const place = audit.state.places.get(`${C}-u${user}`);
          if (!place) expect(r.data!.myEntry).toBeNull();
          else expect(r.data!.myEntry).toMatchObject({ ticket: place.ticket, position: place.position });
          settled.add(user);
        },
      );
    }
    expect(settled.size).toBe(sample.length);
    console.log(`Redis rebuild: ${unavailable} retryable UNAVAILABLE answers, no wrong one`);
    const c = await gql(apis[0]!.port, admin, CAMPAIGN, { id: C });
    expect(c.data!.campaign).toMatchObject({ entrants: audit.entrants, winners: STOCK, status: 'SOLD_OUT' });
    // after the rebuild, a late click is still SOLD_OUT and adds nothing
    const late = await gql(apis[0]!.port, await token('late-comer'), ENTER, { c: C });
    expect(late.data!.enter).toEqual({ rejection: 'SOLD_OUT', entry: null });
    expect((await auditFromLog(iso.config, C)).entrants).toBe(audit.entrants);
  });
});

describe('the writer killed mid-burst', () => {
  it('restarts, decides the rest, and issues no second gifticon', async () => {
    const C = 'killed';
    const STOCK = 100;
    await createCampaign(C, STOCK);
    let killed = false;
    const restart = (async () => {
      await waitUntil(
        async () => killed,
        (k) => k,
        { what: 'the writer killed', timeoutMs: 120_000, everyMs: 20 },
      );
      await elapse(300, 'the partition stays without a writer for a moment of the burst');
      writer = await spawnApp(iso, 'writer');
    })();
    const { answers, tokens } = await crowd(C, 600, async (done) => {
      if (!killed && done >= 50) {
        killed = true;
        await writer.kill('SIGKILL');
      }
    });
    await restart;
    const audit = await eventually(
      () => auditFromLog(iso.config, C),
      (a) => a.winners >= STOCK,
    );
    expect(audit.problems).toEqual([]);
    expect(audit.winners).toBe(STOCK);
    // every accepted entry, QUEUED ones included, is in the log and decided the same way
    for (const [user, list] of answers) {
      const e = list.find((a) => a.entry)?.entry;
      if (!e) continue;
      const place = audit.state.places.get(`${C}-u${user}`);
      expect(place?.ticket).toBe(e.ticket);
    }
    const queued = [...answers].filter(([, l]) => l.some((a) => a.entry?.status === 'QUEUED')).map(([u]) => u);
    // the kill happened mid-burst: some calls could only be answered QUEUED
    expect(queued.length).toBeGreaterThan(0);
    for (const user of queued.slice(0, 40)) {
      const r = await gql(apis[0]!.port, tokens[user]!, MY, { c: C });
      const place = audit.state.places.get(`${C}-u${user}`)!;
      expect(r.data!.myEntry).toMatchObject({ position: place.position, status: place.position <= STOCK ? 'WON' : 'LOST' });
    }
  });
});
