import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { liveSocket } from '../support/live.js';

/**
 * Three API processes behind one address give a user one budget, not three: `enter`'s per-user limit
 * and the cost budget live in Redis. (Kept in each process's memory, a user got three times the limit.)
 */
const RATE = 10;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { ticket } } }`;
let iso: Isolated;
let apis: AppProcess[] = [];
let writer: AppProcess;

beforeAll(async () => {
  iso = await isolated('shared-limits', {
    ENTER_RATE_PER_SEC: String(RATE),
    RATE_LIMIT_USER_COST_PER_SEC: String(4 * RATE),
    WS_MAX_SOCKETS_PER_USER: '2',
  });
  writer = await spawnApp(iso, 'writer');
  apis = await Promise.all([0, 1, 2].map(() => spawnApp(iso, 'api')));
  const admin = await token('boss', 'admin');
  const created = await gql(
    apis[0]!.port,
    admin,
    `mutation { createCampaign(input: { id: "shared", title: "t", reward: "r", stock: 5, closesAt: "2099-01-01T00:00:00Z" }) { id } }`,
  );
  expect(created.errors).toBeUndefined();
});
afterAll(async () => {
  await Promise.all([...apis, writer].map((a) => a?.kill()));
  await iso?.cleanup();
});

describe('limits across API processes', () => {
  it("gives one user's enter calls, spread over three processes, the configured budget once", async () => {
    const alice = await token('alice');
    // warm each process's connections, so that the burst fits in less than one window
    await Promise.all(apis.map(async (a) => gql(a.port, await token('warm'), '{ __typename }')));
    const calls = 3 * RATE;
    const started = performance.now();
    const rs = await Promise.all(Array.from({ length: calls }, (_, i) => gql(apis[i % 3]!.port, alice, ENTER, { c: 'shared' })));
    const seconds = (performance.now() - started) / 1000;
    const allowed = rs.filter((r) => r.data?.enter?.entry).length;
    const limited = rs.filter((r) => r.errors?.[0]?.extensions?.code === 'RATE_LIMITED').length;
    console.log(`${calls} enter calls over 3 processes in ${seconds.toFixed(2)} s: ${allowed} allowed, ${limited} RATE_LIMITED`);
    expect(allowed + limited).toBe(calls);
    // the calls touched at most ceil(seconds) + 1 one-second windows of RATE each (per process, each
    // process's first window let RATE through: 3 x RATE for a burst under a second)
    expect(allowed).toBeGreaterThanOrEqual(RATE);
    expect(allowed).toBeLessThanOrEqual(RATE * (Math.ceil(seconds) + 1));
    expect(seconds, 'the burst must fit in less than a second to tell one budget from three').toBeLessThan(1);
    expect(allowed).toBeLessThan(3 * RATE);
  });

  it("counts a user's sockets across processes: two on one, and a third on another is refused until one closes", async () => {
    const gina = await token('gina');
    const [a, b] = [liveSocket(apis[0]!.port, gina), liveSocket(apis[0]!.port, gina)];
    await Promise.all([a.connected, b.connected]);
    const third = liveSocket(apis[1]!.port, gina);
    expect(await third.closed).toBe(4429);
    await a.dispose();
    await a.closed;
    // the place is released as the socket closes; the next socket, on a third process, gets it
    let again = liveSocket(apis[2]!.port, gina);
    for (let tries = 0; (await Promise.race([again.connected.then(() => 'in'), again.closed])) !== 'in' && tries < 20; tries++)
      again = liveSocket(apis[2]!.port, gina);
    await again.connected;
    await Promise.all([again.dispose(), b.dispose()]);
  });
});
