import { afterEach, describe, expect, it } from 'vitest';
import type { GifticonIssued } from '../../src/domain/events.js';
import { startProviderSim, type ProviderSim } from '../../src/provider-sim/server.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { auditFromLog, auditProvider, parkedView } from '../support/audit.js';
import { collect, liveSocket, type LiveSocket } from '../support/live.js';
import { eventually, waitUntil } from '../support/wait.js';

/**
 * The winner's side of a PROVIDER drop: `myEntry.gifticon.status` (PENDING, FAILED while the
 * issuance is parked, ISSUED with the provider's code and expiry), read over HTTP and pushed over
 * the subscription, from Redis (myEntry) and from Postgres (the admin `winners` list), kept by a
 * replay of both; and the provider's 429 with `Retry-After` honoured call by call.
 */
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { entry { status position } } }`;
const GIFT = `status gifticon { status code issuedAt expiresAt }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { ${GIFT} } }`;
const WINNERS = `query($c: ID!) { winners(campaignId: $c) { edges { node { userId gifticon { status expiresAt } } } } }`;
const PARKED = `query { parked(first: 50, status: PARKED) { edges { node { id reason } } } }`;
const REPLAY = `mutation($c: ID) { replay(target: ALL, campaignId: $c) { id } }`;
const JOB = `query($id: ID!) { job(id: $id) { status error } }`;

interface Gift {
  status: string;
  code: string | null;
  issuedAt: string | null;
  expiresAt: string | null;
}

let iso: Isolated | null = null;
let sim: ProviderSim | null = null;
let socket: LiveSocket | null = null;
const apps: AppProcess[] = [];
afterEach(async () => {
  await socket?.dispose();
  for (const a of apps.splice(0)) await a.kill('SIGKILL').catch(() => undefined);
  await sim?.close();
  await iso?.cleanup();
  iso = sim = socket = null;
});

const providerEnv = (s: ProviderSim, extra: Record<string, string> = {}) => ({
  PROVIDER_URL: s.url,
  PROVIDER_TIMEOUT_MS: '300',
  PROVIDER_RATE_PER_SEC: '1000',
  ...extra,
});

/** A PROVIDER campaign, entered by `users` one after another (the n-th of them at position n), or all at once. */
async function drop(port: number, campaignId: string, stock: number, users: string[], atOnce = false) {
  const admin = await token('view-admin', 'admin');
  const closesAt = new Date(Date.now() + 3_600_000).toISOString();
  const r = await gql(port, admin, CREATE, {
    i: { id: campaignId, title: 'Provider', reward: 'Chicken', stock, closesAt, issuance: 'PROVIDER', product: 'chicken-10000' },
  });
  expect(r.errors).toBeUndefined();
  const enter = async (u: string) => expect((await gql(port, await token(u), ENTER, { c: campaignId })).errors).toBeUndefined();
  if (atOnce) await pool(users, users.length, enter);
  else for (const u of users) await enter(u);
}

const myGift = async (port: number, campaignId: string, user: string): Promise<Gift | null> =>
  ((await gql(port, await token(user), MY, { c: campaignId })).data?.myEntry?.gifticon as Gift | undefined) ?? null;

/** The admin `winners` list (the Postgres read model): user → the gifticon's status and expiry. */
async function winnersView(port: number, campaignId: string) {
  const r = await gql(port, await token('view-admin', 'admin'), WINNERS, { c: campaignId });
  expect(r.errors).toBeUndefined();
  const edges = r.data!.winners.edges as { node: { userId: string; gifticon: { status: string; expiresAt: string | null } } }[];
  return Object.fromEntries(edges.map((e) => [e.node.userId, e.node.gifticon]));
}

describe("a PROVIDER winner's gifticon as the winner reads it", () => {
  it('reads FAILED while parked (read and pushed), ISSUED with code and expiry after retryParked, and a replay keeps both', async () => {
    iso = await isolated('provider-view');
    sim = await startProviderSim({ port: 0, latencyMs: 2, rate: 0, errorRate: 0, timeoutRate: 0, permanentRate: 1 });
    const app = await spawnApp(iso, 'api,writer,projector,issuer,worker', providerEnv(sim));
    apps.push(app);
    const C = 'prov-view';
    const [A, B] = [`${C}-a`, `${C}-b`];
    await drop(app.port, C, 2, [A, B]);

    // A watches their entry from before the provider has answered anything
    socket = liveSocket(app.port, await token(A));
    const pushed = collect<{ status: string; gifticon: Gift | null } | null>(
      socket,
      `subscription($c: ID!) { myEntry(campaignId: $c) { ${GIFT} } }`,
      { c: C },
    );
    await pushed.until((v) => v?.status === 'WON');

    // the provider refuses both for good: each reads FAILED, over myEntry (Redis) and in the winners list (Postgres)
    for (const u of [A, B]) {
      const g = await waitUntil(
        () => myGift(app.port, C, u),
        (x) => x?.status === 'FAILED',
        { what: `${u}'s gifticon FAILED` },
      );
      expect(g).toEqual({ status: 'FAILED', code: null, issuedAt: null, expiresAt: null });
    }
    await pushed.until((v) => v?.gifticon?.status === 'FAILED');
    expect(
      await waitUntil(
        () => winnersView(app.port, C),
        (w) => w[A]?.status === 'FAILED' && w[B]?.status === 'FAILED',
        { what: 'both FAILED in the read model' },
      ),
    ).toEqual({ [A]: { status: 'FAILED', expiresAt: null }, [B]: { status: 'FAILED', expiresAt: null } });
    const failedAudit = await auditProvider(iso.config, C, sim);
    expect(failedAudit.problems).toEqual([]);
    expect(failedAudit.gifticons).toBe(0);

    // the provider healed; only A's parked issuance (A won position 1) is retried
    sim.setFaults({ permanentRate: 0 });
    const admin = await token('view-admin', 'admin');
    const parked = await waitUntil(
      async () => ((await gql(app.port, admin, PARKED)).data?.parked?.edges ?? []) as { node: { id: string; reason: string } }[],
      (edges) => edges.length === 2,
      { what: 'both issuances in the parked view' },
    );
    const aParked = parked.find((e) => e.node.id === `issuer:${C}:1`);
    expect(aParked?.node.reason).toBe('PROVIDER');
    const retried = await gql(app.port, admin, `mutation($id: ID!) { retryParked(id: $id) { status } }`, { id: aParked!.node.id });
    expect(retried.errors).toBeUndefined();

    // pushed: ISSUED with the code and the provider's expiry, and never back to PENDING in between
    const values = await pushed.until((v) => v?.gifticon?.status === 'ISSUED');
    const statuses = values.map((v) => v?.gifticon?.status ?? null);
    const fromFailed = statuses.slice(statuses.indexOf('FAILED'));
    expect(fromFailed.at(-1)).toBe('ISSUED');
    expect(new Set(fromFailed.slice(0, -1))).toEqual(new Set(['FAILED']));
    // after a retry the `parked` view says which issuances are still open (auditProvider counts every parked one)
    const audit = await waitUntil(
      async () => auditFromLog(iso!.config, C, await parkedView(iso!.config)),
      (a) => a.gifticons === 1,
      { what: "A's voucher in the log" },
    );
    expect(audit.problems).toEqual([]);
    const issued = audit.log.find((l) => l.event.type === 'GifticonIssued')!.event as GifticonIssued;
    expect(issued.userId).toBe(A);
    const expiresAt = 'expiresAt' in issued ? issued.expiresAt! : '';
    // the simulator's vouchers live 90 days
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now() + 80 * 24 * 3600_000);
    const issuedGift = values.at(-1)!.gifticon!;
    expect(issuedGift).toMatchObject({ status: 'ISSUED', code: audit.codes.get(A), expiresAt });
    expect(await myGift(app.port, C, A)).toEqual(issuedGift);
    expect(await myGift(app.port, C, B)).toMatchObject({ status: 'FAILED', code: null });
    const view = { [A]: { status: 'ISSUED', expiresAt }, [B]: { status: 'FAILED', expiresAt: null } };
    expect(
      await waitUntil(
        () => winnersView(app.port, C),
        (w) => w[A]?.status === 'ISSUED',
        { what: "A's gifticon in the read model" },
      ),
    ).toEqual(view);
    expect(sim.stats()).toMatchObject({ issued: 1, keys: 1, doubles: 0 });

    // Redis and Postgres emptied and rebuilt from the log: the same statuses, code and expiry
    const job = await gql(app.port, admin, REPLAY, { c: C });
    expect(job.errors).toBeUndefined();
    expect(
      await eventually(
        async () => (await gql(app.port, admin, JOB, { id: job.data!.replay.id })).data!.job,
        (j) => j.status === 'SUCCEEDED' || j.status === 'FAILED',
        90_000,
      ),
    ).toEqual({ status: 'SUCCEEDED', error: null });
    const after = await waitUntil(
      async () => ({ a: await myGift(app.port, C, A), b: await myGift(app.port, C, B), view: await winnersView(app.port, C) }),
      (x) => x.a?.status === 'ISSUED' && x.b !== null && Object.keys(x.view).length === 2 && x.view[A]?.status === 'ISSUED',
      { what: 'both winners readable after the replay' },
    );
    expect(after).toEqual({ a: issuedGift, b: { status: 'FAILED', code: null, issuedAt: null, expiresAt: null }, view });
  });

  it("honours the provider's 429 and Retry-After: no key calls again before it, and none is issued twice", async () => {
    iso = await isolated('provider-429');
    // 2 calls a second at the provider against a client paced at 1,000: most first calls are answered 429
    sim = await startProviderSim({ port: 0, latencyMs: 2, rate: 2, errorRate: 0, timeoutRate: 0, permanentRate: 0 });
    const app = await spawnApp(
      iso,
      'api,writer,projector,issuer',
      providerEnv(sim, {
        PROVIDER_MAX_ATTEMPTS: '40',
        // a 429 is honoured once the client reads it: on a loaded machine one answered late would
        // reach a client that gave up after 300 ms, and be a timeout to it (backed off, no Retry-After)
        PROVIDER_TIMEOUT_MS: '5000',
      }),
    );
    apps.push(app);
    const C = 'prov-429';
    const STOCK = 12;
    // all at once: the winners reach the issuer together, as a crowd's do
    await drop(
      app.port,
      C,
      STOCK,
      Array.from({ length: STOCK }, (_, i) => `${C}-u${i}`),
      true,
    );
    const audit = await waitUntil(
      () => auditProvider(iso!.config, C, sim!),
      (a) => a.winners === STOCK && a.gifticons === STOCK,
      { what: 'every winner issued', timeoutMs: 90_000 },
    );
    expect(audit.problems).toEqual([]);
    expect(audit.parked).toEqual([]);
    expect(sim.stats()).toMatchObject({ issued: STOCK, keys: STOCK, doubles: 0, recipientDoubles: 0 });

    // every key's calls as the simulator saw them: after a 429, the next call comes no sooner than its Retry-After
    let refused = 0;
    for (const key of sim.keys()) {
      const calls = sim.history(key);
      expect(calls.at(-1)!.status === 200 || calls.at(-1)!.status === 201).toBe(true);
      for (let i = 0; i + 1 < calls.length; i++) {
        if (calls[i]!.status !== 429) continue;
        refused++;
        expect(calls[i]!.retryAfterMs).toBeGreaterThanOrEqual(1000);
        expect(calls[i + 1]!.at - calls[i]!.at, `${key}: call ${i + 2} after a 429 in ${JSON.stringify(calls)}`).toBeGreaterThanOrEqual(
          calls[i]!.retryAfterMs!,
        );
      }
    }
    // the limit did bite: of 12 first calls that come within a second or three, at most 2 a second pass
    expect(refused).toBeGreaterThanOrEqual(STOCK / 2);
  });
});
