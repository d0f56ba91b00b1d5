import { afterEach, describe, expect, it } from 'vitest';
import { BACKOFF_DEFAULTS, BREAKER_DEFAULTS, type BreakerState } from '../../src/issuer/client.js';
import { issueAll, range, simAndClient, winner, type ProviderSim } from '../support/provider.js';
import { elapse, waitUntil } from '../support/wait.js';

/**
 * The provider client against the real simulator over HTTP: no mock anywhere. Each test starts its
 * own simulator on a free port with the faults it needs.
 */

const sims: ProviderSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});
async function setup(...args: Parameters<typeof simAndClient>) {
  const pair = await simAndClient(...args);
  sims.push(pair.sim);
  return pair;
}

async function counter(registry: import('prom-client').Registry, name: string): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [Object.values(v.labels).join(',') || '', v.value]));
}

describe('the provider client against the simulator', () => {
  it('transient errors and timeouts after issuing end with one voucher per winner and no doubles', async () => {
    const { sim, client, registry } = await setup(
      { latencyMs: 5, errorRate: 0.3, timeoutRate: 0.2 },
      { timeoutMs: 300, breaker: { threshold: 0.9, windowMs: 2000, minCallsPerSec: 5, openMs: 300 } },
    );
    const reqs = range(120).map((n) => winner('no-doubles', n));
    const outcomes = await issueAll(client, reqs);

    expect(outcomes.map((o) => o.kind)).toEqual(reqs.map(() => 'issued'));
    // the faults did happen: some answers never came (a voucher issued, then a timeout), some were 5xx
    const histories = reqs.map((r) => sim.history(r.idempotencyKey));
    expect(histories.filter((h) => h.some((s) => s.status === null)).length).toBeGreaterThan(5);
    expect(histories.filter((h) => h.some((s) => s.status !== null && s.status >= 500)).length).toBeGreaterThan(5);
    // a winner whose first answer was lost gets back the voucher the provider had already issued
    const ids = new Set(outcomes.map((o) => (o.kind === 'issued' ? o.voucher.voucherId : '')));
    expect(ids.size).toBe(reqs.length);
    expect(sim.stats()).toMatchObject({ issued: reqs.length, keys: reqs.length, doubles: 0, recipientDoubles: 0 });
    const calls = await counter(registry, 'firstcome_provider_calls_total');
    expect(calls.issued).toBe(reqs.length);
    expect((calls.timeout ?? 0) + (calls.server ?? 0)).toBeGreaterThan(10);
    expect((await counter(registry, 'firstcome_provider_retries_total'))['']).toBeGreaterThan(10);
  });

  it('a 429 with Retry-After is waited out before the same key calls again', async () => {
    const { sim, client } = await setup({ rate: 5 }, { backoff: { firstMs: 10, capMs: 50 } });
    const reqs = range(15).map((n) => winner('retry-after', n));
    const outcomes = await issueAll(client, reqs);

    let limited = 0;
    for (const r of reqs) {
      const h = sim.history(r.idempotencyKey);
      for (let i = 0; i + 1 < h.length; i++) {
        if (h[i]!.status !== 429) continue;
        limited++;
        // the simulator answers `Retry-After: 1`
        expect(h[i + 1]!.at - h[i]!.at, `${r.idempotencyKey}'s call after a 429`).toBeGreaterThanOrEqual(990);
      }
    }
    expect(limited).toBeGreaterThan(5);
    expect(outcomes.every((o) => o.kind === 'issued')).toBe(true);
    expect(sim.stats()).toMatchObject({ issued: 15, doubles: 0 });
  });

  it("a permanent 4xx comes back at once with the provider's answer, and the same key succeeds once the cause is gone", async () => {
    const { sim, client, registry } = await setup({ permanentRate: 1 });
    const req = winner('permanent', 1);
    const first = await client.issue(req);

    expect(first).toEqual({ kind: 'permanent', status: 422, answer: '{"error":"recipient_not_eligible"}', attempts: 1 });
    expect(sim.history(req.idempotencyKey)).toHaveLength(1);
    expect(sim.stats().issued).toBe(0);

    sim.setFaults({ permanentRate: 0 });
    const again = await client.issue(req);
    expect(again.kind).toBe('issued');
    expect(sim.stats()).toMatchObject({ issued: 1, keys: 1, doubles: 0 });
    expect(await counter(registry, 'firstcome_provider_issuances_total')).toEqual({ permanent: 1, issued: 1 });
  });

  it('a wrong token is a permanent 401, not retried', async () => {
    const { sim, client } = await setup({ token: 'the-token-the-provider-gave-us' }, {}, 'a-token-it-never-gave');
    const out = await client.issue(winner('token', 1));
    expect(out).toMatchObject({ kind: 'permanent', status: 401, attempts: 1 });
    expect(sim.stats()).toMatchObject({ issued: 0, requests: 1 });
  });

  it('gives up after its attempts, and after its time budget, with the last answer', async () => {
    const attempts = await setup(
      { errorRate: 1 },
      { maxAttempts: 4, breaker: { threshold: 0.99, windowMs: 1000, minCallsPerSec: 1000, openMs: 1000 } },
    );
    const a = await attempts.client.issue(winner('budget', 1));
    expect(a).toMatchObject({ kind: 'exhausted', why: 'attempts', attempts: 4 });
    expect(a.kind === 'exhausted' && a.last).toMatch(/^HTTP 50[03]$/);
    expect(attempts.sim.history(winner('budget', 1).idempotencyKey)).toHaveLength(4);

    const budget = await setup(
      { errorRate: 1 },
      {
        maxAttempts: 100,
        budgetMs: 1000,
        backoff: { firstMs: 400, capMs: 400 },
        breaker: { threshold: 0.99, windowMs: 1000, minCallsPerSec: 1000, openMs: 1000 },
      },
    );
    const t = Date.now();
    const b = await budget.client.issue(winner('budget', 2));
    expect(b).toMatchObject({ kind: 'exhausted', why: 'budget' });
    expect(Date.now() - t).toBeLessThan(1500);
  });

  it("time waiting behind other winners for a slot is not spent from a voucher's budget", async () => {
    const { client } = await setup(
      { latencyMs: 50, errorRate: 0.5 },
      {
        concurrency: 1,
        budgetMs: 1500,
        maxAttempts: 50,
        breaker: { threshold: 0.99, windowMs: 1000, minCallsPerSec: 1000, openMs: 1000 },
      },
    );
    const t = Date.now();
    const outcomes = await issueAll(
      client,
      range(30).map((n) => winner('queued', n)),
    );
    // one call at a time, half of them failing: the last winners waited longer than the budget
    expect(Date.now() - t).toBeGreaterThan(1500);
    expect(outcomes.filter((o) => o.kind !== 'issued')).toEqual([]);
  });

  it('the breaker opens when most calls fail, holds calls back while open, probes, and closes once the provider answers', async () => {
    const { sim, client, registry } = await setup(
      { down: true },
      {
        concurrency: 10,
        backoff: { firstMs: 50, capMs: 200 },
        maxAttempts: 1000,
        breaker: { threshold: 0.5, windowMs: 1000, minCallsPerSec: 5, openMs: 400 },
      },
    );
    const states: BreakerState[] = [];
    client.onBreaker((s) => states.push(s));
    const reqs = range(20).map((n) => winner('breaker', n));
    const all = issueAll(client, reqs);

    await waitUntil(
      async () => client.breakerState,
      (s) => s === 'open',
      { what: 'the breaker open', timeoutMs: 10_000, everyMs: 20 },
    );
    const before = sim.stats().requests;
    await elapse(2000, 'a window while the breaker is open, to count the calls that still reach the provider');
    const whileOpen = sim.stats().requests - before;
    // without the breaker, 20 callers retrying every ~100 ms make ~400 calls in 2 s; open, only the
    // calls already past it (at most the 10 slots) and a probe every 400 ms or so reach the provider
    expect(whileOpen).toBeLessThanOrEqual(20);
    expect(whileOpen).toBeGreaterThanOrEqual(1);
    expect(states).toContain('half-open');

    sim.setFaults({ down: false });
    const outcomes = await all;
    expect(outcomes.every((o) => o.kind === 'issued')).toBe(true);
    expect(client.breakerState).toBe('closed');
    expect(states.at(-1)).toBe('closed');
    expect(sim.stats()).toMatchObject({ issued: 20, doubles: 0 });
    expect((await counter(registry, 'firstcome_provider_breaker_opened_total'))['']).toBeGreaterThanOrEqual(1);
    expect(await counter(registry, 'firstcome_provider_breaker_state')).toEqual({ closed: 1, open: 0, 'half-open': 0 });
  });

  it('with the production defaults, one winner alone against a provider that is down opens the breaker', async () => {
    // a drop's first batch may hold a single winner: its calls, spaced by the default backoff, are
    // all the breaker sees; a breaker that waits for more calls than one caller makes leaves that
    // winner spending its whole budget on a provider that is down, and says nothing on /readyz
    const { sim, client } = await setup({ down: true }, { breaker: { ...BREAKER_DEFAULTS, openMs: 500 }, backoff: BACKOFF_DEFAULTS });
    const abort = new AbortController();
    const alone = client.issue(winner('alone', 0), abort.signal).catch(() => 'aborted');
    try {
      await waitUntil(
        async () => client.breakerState,
        (s) => s !== 'closed',
        { what: 'the breaker open for one failing caller', timeoutMs: 15_000, everyMs: 20 },
      );
      expect(sim.stats().requests).toBeLessThan(20);
    } finally {
      abort.abort();
      await alone;
    }
  });

  it('pacing holds the rate: no second carries more calls than the token bucket lets through', async () => {
    const { sim, client } = await setup({}, { ratePerSec: 20, concurrency: 10 });
    const reqs = range(60).map((n) => winner('pacing', n));
    const t = Date.now();
    await issueAll(client, reqs);

    const arrivals = reqs.map((r) => sim.history(r.idempotencyKey)[0]!.at).sort((a, b) => a - b);
    let busiest = 0;
    for (let i = 0; i < arrivals.length; i++) {
      let j = i;
      while (j < arrivals.length && arrivals[j]! - arrivals[i]! < 1000) j++;
      busiest = Math.max(busiest, j - i);
    }
    // 20 a second, plus the bucket's tenth of a second (2) as a burst
    expect(busiest).toBeLessThanOrEqual(22);
    expect(Date.now() - t).toBeGreaterThanOrEqual(2500);
    expect(sim.stats().issued).toBe(60);
  });

  it('the concurrency cap holds: never more calls in flight than PROVIDER_CONCURRENCY', async () => {
    const { sim, client } = await setup({ latencyMs: 100 }, { ratePerSec: 1000, concurrency: 4 });
    await issueAll(
      client,
      range(30).map((n) => winner('concurrency', n)),
    );
    expect(sim.stats()).toMatchObject({ issued: 30, maxInFlight: 4 });
  });
});
