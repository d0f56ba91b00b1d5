import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keys } from '../../projections/redis-ordering/index.js';
import { gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { liveSocket } from '../support/live.js';
import { monitorRedis } from '../support/redis.js';
import { waitUntil } from '../support/wait.js';

/**
 * Three API processes behind one address give a user one budget, not three: `enter`'s per-user limit
 * and the cost budget live in Redis. (Kept in each process's memory, a user got three times the limit.)
 */
const RATE = 3;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { ticket } } }`;
let iso: Isolated;
let apis: AppProcess[] = [];
let writer: AppProcess;

beforeAll(async () => {
  iso = await isolated('shared-limits', {
    ENTER_RATE_PER_SEC: String(RATE),
    RATE_LIMIT_USER_COST_PER_SEC: '100',
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
    // warm each process's connections, so that a burst fits in less than one window
    await Promise.all(apis.map(async (a) => gql(a.port, await token('warm'), '{ __typename }')));
    // a burst of RATE + 1 calls on each process, from a new user each try: one under a second tells one
    // budget (RATE a window, 2 x RATE if it straddles two) from three (RATE on each process: 3 x RATE)
    for (let attempt = 1; ; attempt++) {
      const user = await token(`alice-${attempt}`);
      const calls = 3 * (RATE + 1);
      const started = performance.now();
      const rs = await Promise.all(Array.from({ length: calls }, (_, i) => gql(apis[i % 3]!.port, user, ENTER, { c: 'shared' })));
      const seconds = (performance.now() - started) / 1000;
      const allowed = rs.filter((r) => r.data?.enter?.entry).length;
      const limited = rs.filter((r) => r.errors?.[0]?.extensions?.code === 'RATE_LIMITED').length;
      console.log(
        `try ${attempt}: ${calls} enter calls over 3 processes in ${seconds.toFixed(2)} s: ${allowed} allowed, ${limited} RATE_LIMITED`,
      );
      expect(allowed + limited).toBe(calls);
      expect(allowed).toBeGreaterThanOrEqual(RATE);
      expect(allowed).toBeLessThanOrEqual(RATE * (Math.ceil(seconds) + 1));
      if (seconds < 1) {
        expect(allowed).toBeLessThanOrEqual(2 * RATE);
        return;
      }
      expect(attempt, 'no burst fit in a second').toBeLessThan(5);
    }
  });

  it('spends one Redis call of the user budget on a short request: nothing is paid ahead and given back', async () => {
    const api = apis[0]!.port;
    // both documents cached by this process: neither request is charged for a parse
    const warm = await token('warm-short');
    await gql(api, warm, ENTER, { c: 'shared' });
    await gql(api, warm, '{ __typename }');
    const marker = new Redis(iso.config.REDIS_URL);
    const seen: string[][] = [];
    // what clients sent, not what the scripts ran (MONITOR shows those too, from "lua")
    const stop = await monitorRedis(iso.config.REDIS_URL, (args, source) => void (source !== 'lua' && seen.push(args)));
    try {
      const user = await token('short-1');
      expect((await gql(api, user, ENTER, { c: 'shared' })).data?.enter).toBeTruthy();
      // the first request's budget calls go out before its answer: all of them reach Redis before
      // the second request's, and the marker, sent after the second answer, comes after them all
      await gql(api, user, '{ __typename }');
      await marker.echo('short-1 done');
      await waitUntil(async () => seen.some((a) => a[0]?.toLowerCase() === 'echo' && a[1] === 'short-1 done'), Boolean, {
        what: 'the marker in MONITOR',
      });
      const key = `${new Keys(iso.config.REDIS_PREFIX).budget('user')}:short-1`;
      const calls = seen.filter((a) => a.includes(key));
      // one take per request; before, the ~120-byte enter paid a point ahead and got it back: 4 calls
      expect(calls.map((a) => a[0]?.toLowerCase())).toEqual(['evalsha', 'evalsha']);
    } finally {
      stop();
      marker.disconnect();
    }
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
