import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterStackDown, clusterStackUp } from '../../scripts/stack.js';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { runCrowd, tally, wrongAnswers } from '../support/crowd.js';
import { roundRobin } from '../support/proxy.js';
import { waitUntil } from '../support/wait.js';

/**
 * A deployment as docs/deploy.md lays it out, on the local cluster stack (three brokers, a Redis
 * Cluster): three API processes behind a round-robin balancer, two writers, two projectors and a
 * worker. A crowd with duplicate clicks runs through a rolling restart: one process of each role in
 * turn is stopped (SIGTERM), started again and waited on until ready. No caller gets a wrong
 * answer, every acknowledged entry is in the log, and the projections end as the log (I1–I5).
 */
const USERS = Number(process.env.ROLLING_USERS ?? 20_000);
const STOCK = Math.round(USERS / 10);
const C = 'rolling';

let cluster: Awaited<ReturnType<typeof clusterStackUp>>;
let iso: Isolated;
const procs: Record<'api' | 'writer' | 'projector' | 'worker', AppProcess[]> = { api: [], writer: [], projector: [], worker: [] };
let proxy: Awaited<ReturnType<typeof roundRobin>>;

beforeAll(async () => {
  cluster = await clusterStackUp();
  iso = await isolated('rolling', { ...cluster.env, ENTER_WAIT_MS: '1000' });
  // one after another: two processes creating the topic at once race on it
  procs.writer.push(await spawnApp(iso, 'writer'));
  procs.writer.push(await spawnApp(iso, 'writer'));
  procs.projector = await Promise.all([spawnApp(iso, 'projector'), spawnApp(iso, 'projector')]);
  procs.worker = [await spawnApp(iso, 'worker')];
  procs.api = await Promise.all([spawnApp(iso, 'api'), spawnApp(iso, 'api'), spawnApp(iso, 'api')]);
  proxy = await roundRobin(() => procs.api.map((p) => p.port));
}, 300_000);

afterAll(async () => {
  await proxy?.close();
  await Promise.all(
    Object.values(procs)
      .flat()
      .map((p) => p.kill()),
  );
  await iso?.cleanup().catch(() => undefined);
  if (cluster?.kafka === 'started' || cluster?.redis === 'started') await clusterStackDown();
}, 180_000);

describe('a rolling restart mid-drop', () => {
  it(`keeps every acknowledged entry and gives no wrong answer to ${USERS} users, each role restarted in turn (I1–I5)`, async () => {
    const admin = await token('boss', ['admin', 'codes:read']);
    const created = await gql(
      proxy.port,
      admin,
      `mutation { createCampaign(input: { id: "${C}", title: "t", reward: "r", stock: ${STOCK}, closesAt: "2099-01-01T00:00:00Z" }) { id } }`,
    );
    expect(created.errors).toBeUndefined();

    let done = 0;
    const restarts: string[] = [];
    const order: ['api' | 'writer' | 'projector' | 'worker', number][] = [
      ['api', 0],
      ['writer', 0],
      ['projector', 0],
      ['worker', 0],
      ['api', 1],
      ['writer', 1],
      ['projector', 1],
      ['api', 2],
    ];
    const rolling = (async () => {
      await waitUntil(
        async () => done,
        (d) => d >= USERS / 20,
        { what: 'the crowd under way', timeoutMs: 300_000, everyMs: 50 },
      );
      for (const [role, i] of order) {
        const t0 = Date.now();
        await procs[role][i]!.kill('SIGTERM');
        procs[role][i] = await spawnApp(iso, role);
        restarts.push(`${role}#${i} ${Date.now() - t0} ms (at user ${done})`);
      }
    })();
    // duplicate clicks go through the balancer twice, landing on two processes
    const calls = await runCrowd({
      campaignId: C,
      apiPorts: [proxy.port, proxy.port],
      users: USERS,
      dupEvery: 4,
      userPrefix: 'r',
      concurrency: 32,
      onProgress: (d) => (done = d),
    });
    await rolling;
    console.log(`rolling restart: ${restarts.join(', ')}; ${JSON.stringify(tally(calls))}`);
    expect(restarts).toHaveLength(order.length);

    const audit = await waitUntil(
      () => auditFromLog(iso.config, C),
      (a) => a.winners >= Math.min(STOCK, a.entrants) && a.gifticons >= a.winners,
      { what: 'every unit won and issued', timeoutMs: 120_000, everyMs: 1000 },
    );
    const { wrong, acknowledged } = wrongAnswers(calls, audit);
    expect(audit.problems).toEqual([]);
    expect(audit.winners).toBe(Math.min(STOCK, audit.entrants));
    expect(wrong).toEqual([]);
    expect(acknowledged).toBeGreaterThanOrEqual(STOCK);

    // I5: Postgres holds every winner with the log's position and code; Redis's counters and entries agree
    const codes = audit.codes;
    const expected = [...audit.state.places]
      .filter(([, p]) => p.position <= audit.stock)
      .map(([user, p]) => ({ user, position: p.position, code: codes.get(user) }))
      .sort((a, b) => a.position - b.position);
    const winners = async () => {
      const all: { user: string; position: number; code: string | undefined }[] = [];
      let after: string | null = null;
      for (;;) {
        const r: { data?: any } = await gql(
          proxy.port,
          admin,
          `query($c: ID!, $a: String) { winners(campaignId: $c, first: 1000, after: $a) { pageInfo { hasNextPage endCursor } edges { node { userId position gifticon { code } } } } }`,
          { c: C, a: after },
        );
        const w = r.data?.winners;
        if (!w) return all;
        for (const e of w.edges) all.push({ user: e.node.userId, position: e.node.position, code: e.node.gifticon?.code });
        if (!w.pageInfo.hasNextPage) return all;
        after = w.pageInfo.endCursor;
      }
    };
    const pg = await waitUntil(winners, (w) => w.length === expected.length && w.every((x) => x.code), {
      what: 'every winner in Postgres',
      timeoutMs: 120_000,
      everyMs: 1000,
    });
    expect(pg).toEqual(expected);
    const counters = await waitUntil(
      () => gql(proxy.port, admin, `query { campaign(id: "${C}") { entrants winners } }`),
      (r) => r.data?.campaign?.entrants === audit.entrants,
      { what: 'Redis counters', timeoutMs: 60_000 },
    );
    expect(counters.data?.campaign).toEqual({ entrants: audit.entrants, winners: audit.winners });
    const sample = [...audit.state.places].filter((_, i) => i % Math.max(1, Math.floor(audit.entrants / 200)) === 0);
    const seen = await pool(sample, 8, async ([user, p]) => {
      const r = await gql(proxy.port, admin, `query($c: ID!, $u: ID!) { entry(campaignId: $c, userId: $u) { ticket position } }`, {
        c: C,
        u: user,
      });
      return { user, ticket: r.data?.entry?.ticket, position: r.data?.entry?.position, want: { ticket: p.ticket, position: p.position } };
    });
    expect(seen.filter((s) => s.ticket !== s.want.ticket || s.position !== s.want.position)).toEqual([]);
  }, 900_000);
});
