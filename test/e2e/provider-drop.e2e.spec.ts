import { afterEach, describe, expect, it } from 'vitest';
import { startProviderSim, type ProviderSim } from '../../src/provider-sim/server.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { auditFromLog, auditProvider, parkedView } from '../support/audit.js';
import { waitUntil } from '../support/wait.js';

/**
 * PROVIDER drops end to end: real processes (`npm start -- --roles …`), the provider simulator over
 * HTTP with its faults, GraphQL to create, enter and read, and I6 audited on the log, the parked
 * issuances and the simulator's own count of vouchers per key.
 */
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { entry { status } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { status gifticon { code status issuedAt } } }`;

let iso: Isolated | null = null;
let sim: ProviderSim | null = null;
const apps: AppProcess[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.kill('SIGKILL').catch(() => undefined);
  await sim?.close();
  await iso?.cleanup();
  iso = sim = null;
});

async function drop(campaignId: string, stock: number, entrants: number, port: number) {
  const admin = await token('prov-admin', 'admin');
  const closesAt = new Date(Date.now() + 3_600_000).toISOString();
  const r = await gql(port, admin, CREATE, {
    i: { id: campaignId, title: 'Provider', reward: 'Chicken', stock, closesAt, issuance: 'PROVIDER', product: 'chicken-10000' },
  });
  expect(r.errors).toBeUndefined();
  await pool(
    Array.from({ length: entrants }, (_, i) => i),
    16,
    async (i) => {
      const e = await gql(port, await token(`${campaignId}-u${i}`), ENTER, { c: campaignId });
      expect(e.errors).toBeUndefined();
    },
  );
}

const providerEnv = (s: ProviderSim, extra: Record<string, string> = {}) => ({
  PROVIDER_URL: s.url,
  PROVIDER_TIMEOUT_MS: '300',
  PROVIDER_RATE_PER_SEC: '1000',
  ...extra,
});

/** Waits until every winner holds a voucher or a parked issuance, then audits I6 in full. */
async function settled(campaignId: string, stock: number, s: ProviderSim) {
  return waitUntil(
    () => auditProvider(iso!.config, campaignId, s),
    (a) => a.winners === stock && a.ok,
    { what: 'every winner issued or parked, I6 holding', timeoutMs: 90_000 },
  );
}

describe('a PROVIDER drop against the provider simulator', () => {
  it('transient errors and timeouts after issuing: every winner gets one voucher, the provider issues no key twice', async () => {
    iso = await isolated('provider-drop');
    sim = await startProviderSim({ port: 0, latencyMs: 5, rate: 0, errorRate: 0.2, timeoutRate: 0.1, permanentRate: 0 });
    const app = await spawnApp(iso, 'api,writer,projector,issuer', providerEnv(sim));
    apps.push(app);
    const C = 'prov-faults';
    await drop(C, 30, 40, app.port);

    const audit = await settled(C, 30, sim);
    expect(audit.gifticons).toBe(30);
    expect(audit.parked).toEqual([]);
    expect(sim.stats()).toMatchObject({ issued: 30, keys: 30, doubles: 0, recipientDoubles: 0 });
    // the faults did happen (at 30% of calls failing, none in 30 calls is a chance of 2 in 100,000),
    // and each failed call was called again (a slow answer the client gave up on counts as a call too)
    const seen = sim.keys().flatMap((k) => sim!.history(k));
    const failed = seen.filter((a) => a.status === null || a.status >= 500).length;
    expect(failed).toBeGreaterThan(0);
    expect(sim.stats().requests).toBeGreaterThanOrEqual(30 + failed);
    // a winner reads the provider's code as ISSUED, once the read model has it
    const winner = await waitUntil(
      async () => (await gql(app.port, await token(`${C}-u0`), MY, { c: C })).data!.myEntry,
      (e) => e?.gifticon?.status === 'ISSUED',
      { what: "the first winner's gifticon ISSUED" },
    );
    expect(winner.gifticon.code).toBe(audit.codes.get(`${C}-u0`));
    expect(winner.gifticon.issuedAt).not.toBeNull();
  });

  it('the issuer SIGKILLed mid-run: another one finishes, no winner is lost and no voucher doubled', async () => {
    iso = await isolated('provider-kill');
    // 80 ms a call and 40 calls a second: 60 winners take about 1.5 s, long enough to die in the middle
    sim = await startProviderSim({ port: 0, latencyMs: 80, rate: 0, errorRate: 0, timeoutRate: 0, permanentRate: 0 });
    const app = await spawnApp(iso, 'api,writer,projector', providerEnv(sim));
    apps.push(app);
    const env = providerEnv(sim, { PROVIDER_RATE_PER_SEC: '40' });
    const first = await spawnApp(iso, 'issuer', env);
    apps.push(first);
    const C = 'prov-kill';
    await drop(C, 60, 70, app.port);

    await waitUntil(
      async () => sim!.stats().issued,
      (n) => n >= 15,
      { what: 'the first issuer in the middle of the drop' },
    );
    await first.kill('SIGKILL');
    const calledBeforeKill = sim.stats().issued;
    expect(calledBeforeKill).toBeLessThan(60);
    apps.push(await spawnApp(iso, 'issuer', env));

    const audit = await settled(C, 60, sim);
    expect(audit.gifticons).toBe(60);
    expect(audit.log.filter((l) => l.event.type === 'GifticonIssued')).toHaveLength(60);
    expect(sim.stats()).toMatchObject({ issued: 60, keys: 60, doubles: 0, recipientDoubles: 0 });
  });

  it('permanent refusals are parked, then retryParked calls again with the same key and the winners get their vouchers', async () => {
    iso = await isolated('provider-parked');
    sim = await startProviderSim({ port: 0, latencyMs: 2, rate: 0, errorRate: 0, timeoutRate: 0, permanentRate: 1 });
    const app = await spawnApp(iso, 'api,writer,projector,issuer', providerEnv(sim));
    apps.push(app);
    const C = 'prov-parked';
    const STOCK = 5;
    await drop(C, STOCK, STOCK, app.port);
    const admin = await token('prov-admin', 'admin');
    const PARKED = `query { parked(first: 50, status: PARKED) { edges { node { id reason consumer error status } } } }`;
    const parked = await waitUntil(
      async () => ((await gql(app.port, admin, PARKED)).data?.parked?.edges ?? []) as { node: Record<string, string> }[],
      (edges) => edges.length >= STOCK,
      { what: 'every issuance in the parked view' },
    );
    for (const { node } of parked) {
      expect(node).toMatchObject({ reason: 'PROVIDER', consumer: 'issuer', status: 'PARKED' });
      expect(node.error).toContain('HTTP 422');
    }
    const before = await auditFromLog(iso.config, C, await parkedView(iso.config));
    expect(before.problems).toEqual([]);
    expect(before.gifticons).toBe(0);
    expect(sim.stats().issued).toBe(0);

    // the provider's cause is gone: each parked issuance is retried by hand
    sim.setFaults({ permanentRate: 0 });
    const RETRY = `mutation($id: ID!) { retryParked(id: $id) { id status } }`;
    for (const { node } of parked) {
      const r = await gql(app.port, admin, RETRY, { id: node.id });
      expect(r.errors).toBeUndefined();
      expect(r.data!.retryParked.status).toBe('RETRIED');
    }
    const after = await waitUntil(
      async () => auditFromLog(iso!.config, C, await parkedView(iso!.config)),
      (a) => a.gifticons === STOCK,
      { what: 'every retried winner issued', timeoutMs: 60_000 },
    );
    expect(after.problems).toEqual([]);
    // the retries called with the keys the refused calls had: one key per winner, one voucher each
    expect(sim.stats()).toMatchObject({ issued: STOCK, keys: STOCK, doubles: 0, recipientDoubles: 0 });
    const winner = await waitUntil(
      async () => (await gql(app.port, await token(`${C}-u0`), MY, { c: C })).data!.myEntry,
      (e) => e?.gifticon?.status === 'ISSUED',
      { what: "the first winner's gifticon ISSUED" },
    );
    expect(winner.gifticon.code).toBe(after.codes.get(`${C}-u0`));
  });

  it('the provider down through the whole drop, then back: the issue job catches up, and no winner gets two', async () => {
    iso = await isolated('provider-down');
    const down = await startProviderSim({ port: 0, latencyMs: 2, rate: 0, errorRate: 0, timeoutRate: 0, permanentRate: 0, down: true });
    sim = down;
    const app = await spawnApp(
      iso,
      'api,writer,projector,worker,issuer',
      providerEnv(sim, {
        PROVIDER_BREAKER_OPEN_MS: '500',
        // each probe of the open breaker spends one winner's attempt: enough of them that an outage of
        // this test's length parks nobody (parking on spent attempts is the permanent-refusal test's)
        PROVIDER_MAX_ATTEMPTS: '100',
      }),
    );
    apps.push(app);
    const C = 'prov-down';
    const STOCK = 20;
    await drop(C, STOCK, 25, app.port);
    const admin = await token('prov-admin', 'admin');
    // the drop is decided while the provider answers nothing but 503
    await waitUntil(
      async () => (await gql(app.port, admin, `query($c: ID!) { campaign(id: $c) { winners } }`, { c: C })).data?.campaign?.winners,
      (n) => n === STOCK,
      { what: 'the drop decided' },
    );
    expect(sim.stats().issued).toBe(0);
    // the issuer is calling (and failing): a wait of its own, so that a slow start on a loaded machine
    // is told apart from a breaker that does not open
    await waitUntil(
      async () => down.stats().requests,
      (n) => n > 0,
      { what: 'the issuer calling the provider', timeoutMs: 60_000 },
    );
    // /readyz names the issuer as degraded while the breaker is open, and the process stays ready
    const degraded = await waitUntil(
      async () => {
        const r = await fetch(`http://127.0.0.1:${app.port}/readyz`);
        // the simulator's count rides along, for the message should this wait run out
        const body = (await r.json()) as { ok: boolean; degraded?: Record<string, string> };
        return { status: r.status, body, providerRequests: down.stats().requests };
      },
      (r) => r.body.degraded?.issuer !== undefined,
      { what: 'the issuer degraded on /readyz' },
    );
    expect(degraded.status).toBe(200);
    expect(degraded.body.ok).toBe(true);
    expect(degraded.body.degraded!.issuer).toContain('circuit breaker');
    expect(sim.stats()).toMatchObject({ issued: 0 });
    expect(sim.stats().requests).toBeGreaterThan(0);

    sim.setFaults({ down: false });
    const queued = await gql(app.port, admin, `mutation($c: ID!) { issue(campaignId: $c) { id status } }`, { c: C });
    expect(queued.errors).toBeUndefined();
    const job = await waitUntil(
      async () =>
        (await gql(app.port, admin, `query($id: ID!) { job(id: $id) { status progress error } }`, { id: queued.data!.issue.id })).data!.job,
      (j) => j?.status === 'SUCCEEDED' || j?.status === 'FAILED',
      { what: 'the issue job done', timeoutMs: 60_000 },
    );
    expect(job).toMatchObject({ status: 'SUCCEEDED', progress: 1, error: null });
    const audit = await settled(C, STOCK, sim);
    expect(audit.gifticons).toBe(STOCK);
    // the job's requests and the issuer's own catching up met: still one GifticonIssued each
    expect(audit.log.filter((l) => l.event.type === 'GifticonIssued')).toHaveLength(STOCK);
    expect(audit.log.filter((l) => l.event.type === 'IssuanceRequested').length).toBeGreaterThan(0);
    expect(sim.stats()).toMatchObject({ issued: STOCK, keys: STOCK, doubles: 0, recipientDoubles: 0 });
    // the breaker closed again: /readyz says nothing more
    await waitUntil(
      async () => (await (await fetch(`http://127.0.0.1:${app.port}/readyz`)).json()) as { degraded?: unknown },
      (b) => b.degraded === undefined,
      { what: 'the issuer no longer degraded' },
    );

    // a MINTED campaign has nothing to drive
    const minted = await gql(app.port, admin, CREATE, {
      i: { id: 'prov-minted', title: 'M', reward: 'R', stock: 1, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
    });
    expect(minted.errors).toBeUndefined();
    const refused = await gql(app.port, admin, `mutation { issue(campaignId: "prov-minted") { id } }`);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'campaignId' });
  });
});
