import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Budget } from '../../src/api/budgets.js';
import { freePort } from '../../src/net.js';

/**
 * The edge's budgets against a real Redis: one budget however many API processes spend from it
 * (two Budget objects on two clients stand for two processes), a window that a knocking client
 * does not restart, debts that block, and what each budget does when Redis is gone.
 */
const redisA = new Redis('redis://127.0.0.1:6379', { enableAutoPipelining: true });
const redisB = new Redis('redis://127.0.0.1:6379', { enableAutoPipelining: true });
const prefix = () => `t:budget-${randomBytes(4).toString('hex')}`;
// a budget takes a client that is not ready yet as Redis lost (it spends locally): start with both ready
beforeAll(async () => {
  await Promise.all([redisA.ping(), redisB.ping()]);
});
afterAll(() => {
  redisA.disconnect();
  redisB.disconnect();
});

async function spend(budget: Budget, identity: string, n: number): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < n; i++) if ((await budget.take(identity)) === 0) allowed++;
  return allowed;
}

describe('a budget shared through Redis', () => {
  it('lets perSec through in a window, then asks to wait no longer than the rest of it; another identity is untouched', async () => {
    const b = new Budget(redisA, prefix(), 3, 'local');
    expect([await b.take('a'), await b.take('a'), await b.take('a')]).toEqual([0, 0, 0]);
    const wait = await b.take('a');
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(1000);
    expect(await b.take('b')).toBe(0);
  });

  it('gives two processes one budget, not two', async () => {
    const p = prefix();
    const one = new Budget(redisA, p, 10, 'local');
    const two = new Budget(redisB, p, 10, 'local');
    const [a, b] = await Promise.all([spend(one, 'mallory', 15), spend(two, 'mallory', 15)]);
    expect(a + b).toBe(10);
  });

  it('never leases more than perSec in a window across processes, and serves a lease without asking Redis each time', async () => {
    const p = prefix();
    const one = new Budget(redisA, p, 100, 'local', 10);
    const two = new Budget(redisB, p, 100, 'local', 10);
    const started = Date.now();
    const [a, b] = await Promise.all([spend(one, 'proxy', 80), spend(two, 'proxy', 80)]);
    // all 160 in one window (they take a few ms): at most the 100 points of that window
    if (Date.now() - started < 900) expect(a + b).toBeLessThanOrEqual(100);
    expect(a + b).toBeGreaterThanOrEqual(80);
    const consumed = Number(await redisA.get(`${p}:proxy`));
    // 10 points a lease: Redis saw at most ~a tenth of the requests as round trips
    expect(consumed % 10 === 0 || consumed >= 100).toBe(true);
  });

  it('does not restart its window on refused requests: an address knocking all along is let in again within a second', async () => {
    const b = new Budget(redisA, prefix(), 2, 'local');
    const started = Date.now();
    await spend(b, 'knocker', 2);
    let letIn = 0;
    while (Date.now() - started < 2_000) {
      const wait = await b.take('knocker');
      if (wait === 0) {
        letIn = Date.now() - started;
        break;
      }
      await new Promise((r) => setTimeout(r, Math.min(wait, 20)));
    }
    expect(letIn).toBeGreaterThanOrEqual(900);
    expect(letIn).toBeLessThan(1_500);
  });

  it('turns a charge beyond the window into a debt that blocks for the seconds it covers', async () => {
    const b = new Budget(redisA, prefix(), 10, 'local');
    expect(await b.take('heavy')).toBe(0);
    await b.charge('heavy', 29); // 30 points spent: 20 beyond this window, two more windows
    const wait = await b.take('heavy');
    expect(wait).toBeGreaterThan(1000);
    expect(wait).toBeLessThanOrEqual(2000);
  });

  it('grants one of a burst of costly prepayments and refuses the rest; a refund gives points back', async () => {
    const b = new Budget(redisA, prefix(), 40, 'local');
    const waits = await Promise.all(Array.from({ length: 20 }, () => b.prepay('burst', 50)));
    expect(waits.filter((w) => w === 0)).toHaveLength(1);
    expect(waits.filter((w) => w > 0)).toHaveLength(19);
    // the granted one's debt (50 of 40) blocks its sender
    expect(await b.take('burst')).toBeGreaterThan(0);
    const c = new Budget(redisA, prefix(), 10, 'local');
    expect(await c.prepay('cached', 8)).toBe(0);
    await c.refund('cached', 8);
    expect(await spend(c, 'cached', 12)).toBe(10);
  });

  it('with Redis gone, a `local` budget spends from one of the same size in this process, and a `refuse` budget throws', async () => {
    const port = await freePort();
    const gone = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    gone.on('error', () => undefined);
    await gone.connect().catch(() => undefined);
    try {
      const local = new Budget(gone, prefix(), 2, 'local');
      expect([await local.take('x'), await local.take('x')]).toEqual([0, 0]);
      expect(await local.take('x')).toBeGreaterThan(0);
      const refusing = new Budget(gone, prefix(), 2, 'refuse');
      await expect(refusing.take('x')).rejects.toThrow();
    } finally {
      gone.disconnect();
    }
  });
});
