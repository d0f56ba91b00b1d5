import { Redis } from 'ioredis';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, isolated, spawnApp, TEST_JWT_SECRET, token, type AppProcess, type Isolated } from '../support/app.js';
import { Keys } from '../../projections/redis-ordering/index.js';
import { decidedEntry } from '../support/wait.js';

/** Bad input answers with the right code, the lifecycle rejects as CONTRACT.md says, and the server keeps serving. */
let iso: Isolated;
let app: AppProcess;
let admin: string;
let alice: string;

const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { status position } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id status } }`;
const code = (r: { errors?: { extensions?: { code?: string } }[] }) => r.errors?.[0]?.extensions?.code;
const field = (r: { errors?: { extensions?: { field?: string } }[] }) => r.errors?.[0]?.extensions?.field;
const later = (ms: number) => new Date(Date.now() + ms).toISOString();

beforeAll(async () => {
  iso = await isolated('input');
  app = await spawnApp(iso, 'api,writer');
  admin = await token('boss', 'admin');
  alice = await token('alice');
});
afterAll(async () => {
  await app?.kill();
  await iso?.cleanup();
});

describe('who is who', () => {
  it('refuses a missing, forged, unsigned, expired or wrongly signed token with UNAUTHENTICATED', async () => {
    const key = new TextEncoder().encode(TEST_JWT_SECRET);
    const forged = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .sign(new TextEncoder().encode('another-secret-of-enough-length'));
    const none = new UnsecuredJWT({ role: 'admin' }).setSubject('mallory').encode();
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(key);
    const hs512 = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS512' })
      .setSubject('alice')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET.repeat(3)));
    const badSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('has space').sign(key);
    for (const t of [null, 'garbage', forged, none, expired, hs512, badSub]) {
      const r = await gql(app.port, t, `{ myEntry(campaignId: "x") { ticket } }`);
      expect(code(r), `token ${String(t).slice(0, 20)}`).toBe('UNAUTHENTICATED');
    }
  });

  it('gives FORBIDDEN to a user on admin fields', async () => {
    for (const q of [
      `{ entry(campaignId: "x", userId: "bob") { ticket } }`,
      `mutation { closeCampaign(id: "x") { id } }`,
      `mutation { createCampaign(input: { title: "t", reward: "r", stock: 1, closesAt: "${later(60_000)}" }) { id } }`,
    ]) {
      expect(code(await gql(app.port, alice, q)), q).toBe('FORBIDDEN');
    }
  });
});

describe('bad input', () => {
  it('names the field of an invalid argument with BAD_USER_INPUT', async () => {
    const base = { title: 'Drop', reward: 'Coffee', stock: 10, closesAt: later(3_600_000) };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, stock: 0 }, 'input.stock'],
      [{ ...base, stock: 10_000_001 }, 'input.stock'],
      [{ ...base, id: 'Has_Upper' }, 'input.id'],
      [{ ...base, id: 'x'.repeat(65) }, 'input.id'],
      [{ ...base, title: '' }, 'input.title'],
      [{ ...base, closesAt: later(-1000) }, 'input.closesAt'],
      [{ ...base, opensAt: later(7_200_000) }, 'input.closesAt'],
    ];
    for (const [input, f] of cases) {
      const r = await gql(app.port, admin, CREATE, { i: input });
      expect(code(r), JSON.stringify(input)).toBe('BAD_USER_INPUT');
      expect(field(r)).toBe(f);
    }
    const badDate = await gql(app.port, admin, CREATE, { i: { ...base, closesAt: 'tomorrow' } });
    expect(code(badDate)).toBe('BAD_USER_INPUT');
    const noZone = await gql(app.port, admin, CREATE, { i: { ...base, closesAt: '2030-01-01T00:00:00' } });
    expect(code(noZone)).toBe('BAD_USER_INPUT');

    const badId = await gql(app.port, alice, ENTER, { c: 'NOT VALID' });
    expect(code(badId)).toBe('BAD_USER_INPUT');
    expect(field(badId)).toBe('campaignId');
    const badUser = await gql(app.port, admin, `{ entry(campaignId: "x", userId: "a b") { ticket } }`);
    expect(field(badUser)).toBe('userId');
  });

  it('answers NOT_FOUND for an unknown campaign, null where the schema allows it', async () => {
    expect(code(await gql(app.port, alice, ENTER, { c: 'no-such-campaign' }))).toBe('NOT_FOUND');
    expect((await gql(app.port, alice, `{ campaign(id: "no-such-campaign") { id } }`)).data).toEqual({ campaign: null });
    expect((await gql(app.port, alice, `{ myEntry(campaignId: "no-such-campaign") { ticket } }`)).data).toEqual({ myEntry: null });
    expect(code(await gql(app.port, admin, `mutation { closeCampaign(id: "no-such-campaign") { id } }`))).toBe('NOT_FOUND');
  });

  it('refuses a second campaign with the same id', async () => {
    const i = { id: 'twice', title: 'Drop', reward: 'Coffee', stock: 1, closesAt: later(3_600_000) };
    expect((await gql(app.port, admin, CREATE, { i })).errors).toBeUndefined();
    const again = await gql(app.port, admin, CREATE, { i });
    expect(code(again)).toBe('BAD_USER_INPUT');
    expect(field(again)).toBe('input.id');
  });

  it('keeps serving after all of that', async () => {
    expect((await fetch(`http://127.0.0.1:${app.port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${app.port}/readyz`)).status).toBe(200);
    const r = await gql(app.port, alice, `{ __typename }`);
    expect(r.data).toEqual({ __typename: 'Query' });
    const notJson = await fetch(`http://127.0.0.1:${app.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(notJson.status).toBe(400);
  });
});

describe('the lifecycle', () => {
  it('rejects NOT_OPEN before opensAt, CLOSED after closeCampaign, SOLD_OUT when every unit is taken, adding nothing', async () => {
    const early = await gql(app.port, admin, CREATE, {
      i: { id: 'early', title: 'Later', reward: 'Cake', stock: 5, opensAt: later(3_600_000), closesAt: later(7_200_000) },
    });
    expect(early.data!.createCampaign).toEqual({ id: 'early', status: 'SCHEDULED' });
    expect((await gql(app.port, alice, ENTER, { c: 'early' })).data!.enter).toEqual({ rejection: 'NOT_OPEN', entry: null });

    await gql(app.port, admin, CREATE, { i: { id: 'one', title: 'One', reward: 'Cake', stock: 1, closesAt: later(3_600_000) } });
    // decided within ENTER_WAIT_MS, or QUEUED and decided later: a busy box may take longer
    const first = (await gql(app.port, alice, ENTER, { c: 'one' })).data!.enter;
    expect([
      { rejection: null, entry: { status: 'WON', position: 1 } },
      { rejection: null, entry: { status: 'QUEUED', position: null } },
    ]).toContainEqual(first);
    expect(await decidedEntry(app.port, alice, 'one')).toMatchObject({ status: 'WON', position: 1 });
    expect((await gql(app.port, await token('bob'), ENTER, { c: 'one' })).data!.enter).toEqual({ rejection: 'SOLD_OUT', entry: null });
    expect((await gql(app.port, await token('bob'), `{ myEntry(campaignId: "one") { ticket } }`)).data).toEqual({ myEntry: null });
    // the winner asking again still gets their entry, not SOLD_OUT
    expect((await gql(app.port, alice, ENTER, { c: 'one' })).data!.enter).toEqual({
      rejection: null,
      entry: { status: 'WON', position: 1 },
    });

    await gql(app.port, admin, CREATE, { i: { id: 'shut', title: 'Shut', reward: 'Cake', stock: 5, closesAt: later(3_600_000) } });
    const closed = await gql(app.port, admin, `mutation { closeCampaign(id: "shut") { id status } }`);
    expect(closed.data!.closeCampaign).toEqual({ id: 'shut', status: 'CLOSED' });
    expect((await gql(app.port, alice, ENTER, { c: 'shut' })).data!.enter).toEqual({ rejection: 'CLOSED', entry: null });
    const c = await gql(app.port, alice, `{ campaign(id: "shut") { status entrants winners } }`);
    expect(c.data!.campaign).toEqual({ status: 'CLOSED', entrants: 0, winners: 0 });
  });

  it('slows a user who hammers enter with RATE_LIMITED and retryAfterMs', async () => {
    const RATE = 3;
    const CALLS = 30;
    const limited = await isolated('ratelimit', { ENTER_RATE_PER_SEC: String(RATE) });
    const p = await spawnApp(limited, 'api,writer');
    try {
      await gql(p.port, admin, CREATE, { i: { id: 'rl', title: 'RL', reward: 'Cake', stock: 5, closesAt: later(3_600_000) } });
      const started = performance.now();
      const rs = await Promise.all(Array.from({ length: CALLS }, () => gql(p.port, alice, ENTER, { c: 'rl' })));
      const seconds = (performance.now() - started) / 1000;
      const limitedOnes = rs.filter((r) => code(r) === 'RATE_LIMITED');
      const allowed = rs.filter((r) => r.data?.enter?.entry);
      expect(allowed.length + limitedOnes.length).toBe(CALLS);
      // however slow the box, the calls touched at most ceil(seconds) + 1 one-second windows
      expect(allowed.length).toBeGreaterThanOrEqual(1);
      expect(allowed.length, `${CALLS} calls over ${seconds.toFixed(2)} s`).toBeLessThanOrEqual(RATE * (Math.ceil(seconds) + 1));
      expect(limitedOnes.length).toBeGreaterThan(0);
      const wait = Math.max(...limitedOnes.map((r) => r.errors![0]!.extensions!.retryAfterMs!));
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(1000);
      // once the time it named has passed, the user is let through again
      await new Promise((r) => setTimeout(r, wait + 50));
      expect(code(await gql(p.port, alice, ENTER, { c: 'rl' }))).toBeUndefined();
    } finally {
      await p.kill();
      await limited.cleanup();
    }
  });

  it("answers a sold-out campaign's crowd from memory without spending its enter budget; one in line is still slowed", async () => {
    const RATE = 2;
    const CALLS = 12;
    const limited = await isolated('soldout-budget', { ENTER_RATE_PER_SEC: String(RATE) });
    const p = await spawnApp(limited, 'api,writer');
    try {
      await gql(p.port, admin, CREATE, { i: { id: 'gone', title: 'Gone', reward: 'Cake', stock: 1, closesAt: later(3_600_000) } });
      const winner = await token('winner');
      expect((await gql(p.port, winner, ENTER, { c: 'gone' })).errors).toBeUndefined();
      await decidedEntry(p.port, winner, 'gone');
      // the gate says SOLD_OUT, and the process learns it: fresh users are then answered from memory
      const inProcess = async () =>
        Number(
          /^firstcome_enter_sold_out_in_process_total (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text())?.[1] ??
            0,
        );
      for (let i = 0; (await inProcess()) === 0; i++) {
        expect(i, 'the process never answered from memory').toBeLessThan(200);
        expect((await gql(p.port, await token(`learn-${i}`), ENTER, { c: 'gone' })).data?.enter.rejection).toBe('SOLD_OUT');
      }
      const fresh = await token('hammer-fresh');
      const rs = await Promise.all(Array.from({ length: CALLS }, () => gql(p.port, fresh, ENTER, { c: 'gone' })));
      expect(rs.map((r) => code(r) ?? r.data?.enter.rejection)).toEqual(Array(CALLS).fill('SOLD_OUT'));
      // the winner may be in line: each call goes to the gate, and the budget slows them
      const again = await Promise.all(Array.from({ length: CALLS }, () => gql(p.port, winner, ENTER, { c: 'gone' })));
      expect(again.filter((r) => code(r) === 'RATE_LIMITED').length).toBeGreaterThan(0);
      expect(again.every((r) => code(r) === 'RATE_LIMITED' || r.data?.enter.entry?.status === 'WON')).toBe(true);
    } finally {
      await p.kill();
      await limited.cleanup();
    }
  });

  it("answers a repeat of a sold-out request at the edge with GraphQL's very reply; one in line still gets their entry", async () => {
    await gql(app.port, admin, CREATE, { i: { id: 'echo', title: 'Echo', reward: 'Cake', stock: 1, closesAt: later(3_600_000) } });
    const winner = await token('echo-winner');
    expect((await gql(app.port, winner, ENTER, { c: 'echo' })).errors).toBeUndefined();
    await decidedEntry(app.port, winner, 'echo');
    const metric = async (name: string) => {
      const value = new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text())?.[1];
      expect(value, `${name} in /metrics`).toBeDefined();
      return Number(value);
    };
    const inProcess = () => metric('firstcome_enter_sold_out_in_process_total');
    const replayed = () => metric('firstcome_edge_sold_out_replayed_total');
    const from = await inProcess();
    for (let i = 0; (await inProcess()) === from; i++) {
      expect(i, 'the process never answered from memory').toBeLessThan(200);
      expect((await gql(app.port, await token(`echo-learn-${i}`), ENTER, { c: 'echo' })).data?.enter.rejection).toBe('SOLD_OUT');
    }
    // aliases, __typename and a literal argument: the remembered reply keeps the document's shape
    const body = JSON.stringify({
      query: `mutation { e: enter(campaignId: "echo") { __typename why: rejection entry { ticket position } } }`,
    });
    const post = async (auth: string) => {
      const r = await fetch(`http://127.0.0.1:${app.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${auth}` },
        body,
      });
      return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
    };
    // `requests` counts each call once, however it is answered
    const redis = new Redis(iso.config.REDIS_URL);
    const requests = async () => Number(await redis.hget(new Keys(iso.config.REDIS_PREFIX).meta('echo'), 'requests'));
    const counted = await requests();
    const before = await replayed();
    const first = await post(await token('echo-fresh-0'));
    expect(first).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      text: JSON.stringify({ data: { e: { __typename: 'EnterPayload', why: 'SOLD_OUT', entry: null } } }) + '\n',
    });
    expect(await replayed()).toBe(before);
    // the same request of other fresh users, and the same user again: the same bytes, without GraphQL
    for (const user of ['echo-fresh-1', 'echo-fresh-2', 'echo-fresh-0']) expect(await post(await token(user))).toEqual(first);
    expect(await replayed()).toBe(before + 3);
    // the winner's same request is never SOLD_OUT: the crowd memory sends it on to the gate
    const won = JSON.parse((await post(winner)).text) as { data: { e: { why: string | null; entry: { position: number } } } };
    expect(won.data.e).toMatchObject({ why: null, entry: { position: 1 } });
    expect(await replayed()).toBe(before + 3);
    expect(await requests()).toBe(counted + 5);
    redis.disconnect();
  });
});
