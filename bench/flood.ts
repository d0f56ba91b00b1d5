import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { signToken, tokenShape } from '../src/api/auth.js';
import { median, percentile, table } from '../src/cli/crowd.js';
import { loadConfig } from '../src/config.js';
import { migrate } from '../src/infra/prisma/migrate.js';
import { stackUp } from '../scripts/stack.js';
import { autocannonGenerator } from './load/autocannon.js';
import { cpuMsOf } from './procCpu.js';
import { benchRun } from './run.js';
import { cleanUpRun, startServer, type BenchServer } from './server.js';

/**
 * `npm run bench:flood`: what one flooder costs everyone else, against `npm start` (every role in
 * one process) in production mode with the edge's default budgets. Honest users ask `myEntry` at a
 * steady pace from addresses of their own while one of three flooders sends on 20 connections as
 * fast as it is answered:
 * - one signed-in user sending refused (over-limit) queries;
 * - one address with no token sending the same;
 * - one signed-in user sending the largest query the limits accept, with new text each time.
 * Per case: the honest p99 before and during the flood, and the server's CPU (cores) before and
 * after the flood's first second. Then the `{ __typename }` ceiling with the budgets on and off, in
 * turn. Every figure is printed per run, and the median of the runs.
 */
const opts = new Command()
  .option('--seconds <s>', 'seconds of each flood', (v) => Number(v), 10)
  .option('--baseline <s>', 'seconds of honest load alone before each flood', (v) => Number(v), 5)
  .option('--runs <n>', 'runs of every case', (v) => Number(v), 3)
  .parse()
  .opts<{ seconds: number; baseline: number; runs: number }>();

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HONEST_CONNECTIONS = 10;
const HONEST_EVERY_MS = 50;
const FLOOD_CONNECTIONS = 20;
const REFUSED = `{ ${Array.from({ length: 300 }, (_, i) => `a${i}: myEntry(campaignId: "flood") { ticket }`).join(' ')} }`;
/** the largest document the default limits accept: 15 aliases, ~990 tokens; new text each time */
const largest = () =>
  `{ ${Array.from({ length: 15 }, (_, i) => `a${i}: campaign(id: "c${randomBytes(6).toString('hex')}") { id title reward stock opensAt closesAt status entrants winners remaining }`).join(' ')} ${'__typename '.repeat(640)}}`;

interface Sample {
  at: number;
  ms: number;
}

async function post(base: string, body: string, token: string | null, from: string): Promise<number> {
  const r = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': from, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });
  await r.arrayBuffer();
  return r.status;
}

/** Honest users at a steady pace until `stop()`, each from its own address: their latencies. */
function honest(base: string, tokens: string[]) {
  const samples: Sample[] = [];
  let running = true;
  const body = JSON.stringify({ query: '{ myEntry(campaignId: "flood") { ticket status } }' });
  const done = Promise.all(
    Array.from({ length: HONEST_CONNECTIONS }, async (_, c) => {
      while (running) {
        const t0 = performance.now();
        await post(base, body, tokens[c]!, `10.0.0.${c + 1}`);
        const ms = performance.now() - t0;
        samples.push({ at: Date.now(), ms });
        await new Promise((r) => setTimeout(r, Math.max(0, HONEST_EVERY_MS - ms)));
      }
    }),
  );
  return {
    samples,
    async stop() {
      running = false;
      await done;
    },
  };
}

type Case = { name: string; token: string | null; body: () => string };

async function flood(base: string, c: Case, seconds: number) {
  const statuses = new Map<number, number>();
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: FLOOD_CONNECTIONS }, async () => {
      while (Date.now() < end) {
        const s = await post(base, c.body(), c.token, '198.51.100.66').catch(() => 0);
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
      }
    }),
  );
  return statuses;
}

const cores = (pid: number | undefined, from: { at: number; cpu: number }) => (cpuMsOf(pid) - from.cpu) / (Date.now() - from.at);
const mark = (pid: number | undefined) => ({ at: Date.now(), cpu: cpuMsOf(pid) });
const p99 = (xs: Sample[]) =>
  percentile(
    xs.map((s) => s.ms).sort((a, b) => a - b),
    99,
  );

async function measure(server: BenchServer, c: Case, honestTokens: string[]) {
  const pid = server.child.pid;
  const load = honest(server.base, honestTokens);
  await new Promise((r) => setTimeout(r, 1000)); // honest load settles (connections, JIT) before the baseline
  const b0 = mark(pid);
  const baseStart = Date.now();
  await new Promise((r) => setTimeout(r, opts.baseline * 1000));
  const baseCores = cores(pid, b0);
  const baseline = load.samples.filter((s) => s.at >= baseStart);
  const floodStart = Date.now();
  let f0 = mark(pid);
  const settled = setTimeout(() => (f0 = mark(pid)), 1000);
  const statuses = await flood(server.base, c, opts.seconds);
  clearTimeout(settled);
  const floodCores = cores(pid, f0);
  await load.stop();
  const during = load.samples.filter((s) => s.at >= floodStart);
  return {
    baseP99: p99(baseline),
    floodP99: p99(during),
    baseCores,
    floodCores,
    statuses: [...statuses]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}:${n}`)
      .join(' '),
  };
}

async function ceiling(server: BenchServer, tokens: string[]) {
  const load = autocannonGenerator(tokens, 'bench:flood ceiling');
  try {
    const r = await load.run({ url: server.base, connections: 50, duration: 5, body: JSON.stringify({ query: '{ __typename }' }) });
    return r.rps;
  } finally {
    load.close();
  }
}

async function main() {
  await stackUp({ root: ROOT });
  const { database, env: own } = benchRun('flood');
  const env = {
    ...process.env,
    ...own,
    NODE_ENV: 'production',
    JWT_SECRET: 'bench-flood-secret-0123456789',
    LOG_LEVEL: 'error',
    TRUST_PROXY: 'loopback',
    // the ceiling's load comes from this one address, honest users and flooders from addresses of their own
    RATE_LIMIT_IP_CEILING_PER_SEC: '10000000',
  };
  const config = loadConfig(env);
  await migrate(config.DATABASE_URL);
  const shape = tokenShape(config);
  const sign = (sub: string, role?: 'admin') => signToken(config.JWT_SECRET, { sub, role, expiresIn: '1h' }, shape);
  const on = await startServer('src/main.ts', [], env);
  // the same server with every budget off: what the ceiling was before the edge spent from Redis
  const off = await startServer('src/main.ts', ['--roles', 'api'], {
    ...env,
    RATE_LIMIT_IP_CEILING_PER_SEC: '0',
    RATE_LIMIT_IP_PER_SEC: '0',
    RATE_LIMIT_USER_COST_PER_SEC: '0',
    RATE_LIMIT_ADMIN_COST_PER_SEC: '0',
  });
  try {
    const admin = await sign('bench-admin', 'admin');
    await post(
      on.base,
      JSON.stringify({
        query: `mutation { createCampaign(input: { id: "flood", title: "t", reward: "r", stock: 10, closesAt: "${new Date(Date.now() + 3_600_000).toISOString()}" }) { id } }`,
      }),
      admin,
      '10.1.0.1',
    );
    const honestTokens = await Promise.all(Array.from({ length: HONEST_CONNECTIONS }, (_, i) => sign(`honest-${i}`)));
    const cases: Case[] = [
      { name: 'one token, refused queries', token: await sign('flooder'), body: () => JSON.stringify({ query: REFUSED }) },
      { name: 'one address, no token, refused queries', token: null, body: () => JSON.stringify({ query: REFUSED }) },
      {
        name: 'one token, largest accepted query, new text',
        token: await sign('big-spender'),
        body: () => JSON.stringify({ query: largest() }),
      },
    ];
    const rows: string[][] = [];
    const byCase = new Map<string, { ratio: number[]; extra: number[] }>();
    for (let run = 1; run <= opts.runs; run++) {
      for (const c of cases) {
        // a flooder of its own each run: a debt from the last run must not hold this one back
        const flooder = { ...c, token: c.token && (await sign(`${c.name.replace(/\W+/g, '-')}-${run}`)) };
        const m = await measure(on, flooder, honestTokens);
        const ratio = m.floodP99 / m.baseP99;
        const extra = m.floodCores - m.baseCores;
        const agg = byCase.get(c.name) ?? { ratio: [], extra: [] };
        agg.ratio.push(ratio);
        agg.extra.push(extra);
        byCase.set(c.name, agg);
        rows.push([
          String(run),
          c.name,
          m.baseP99.toFixed(1),
          m.floodP99.toFixed(1),
          ratio.toFixed(2),
          m.baseCores.toFixed(3),
          m.floodCores.toFixed(3),
          extra.toFixed(3),
          m.statuses,
        ]);
        process.stdout.write(
          `run ${run}, ${c.name}: p99 ${m.baseP99.toFixed(1)} -> ${m.floodP99.toFixed(1)} ms, cores ${m.baseCores.toFixed(3)} -> ${m.floodCores.toFixed(3)}; flooder got ${m.statuses}\n`,
        );
      }
    }
    const ceilings: { on: number[]; off: number[] } = { on: [], off: [] };
    const ceilingTokens = await Promise.all(Array.from({ length: 2000 }, (_, i) => sign(`ceiling-${i}`)));
    for (let run = 1; run <= opts.runs; run++) {
      // in turn, so that a slow moment of the shared machine falls on both
      ceilings.on.push(await ceiling(on, ceilingTokens));
      ceilings.off.push(await ceiling(off, ceilingTokens));
    }
    process.stdout.write('\n');
    process.stdout.write(
      table([
        [
          'run',
          'flooder (20 connections)',
          'honest p99 before (ms)',
          'during (ms)',
          '× before',
          'server cores before',
          'after 1st s',
          'extra cores',
          'flooder answers (status:n)',
        ],
        ...rows,
      ]) + '\n\n',
    );
    const summary = [...byCase].map(([name, a]) => [name, median(a.ratio).toFixed(2), '≤ 2.00', median(a.extra).toFixed(3), '≤ 0.200']);
    process.stdout.write(
      table([['medians of the runs', 'honest p99 × before', 'floor', 'extra cores after 1st s', 'floor'], ...summary]) + '\n\n',
    );
    const ratio = median(ceilings.on) / median(ceilings.off);
    process.stdout.write(
      table([
        ['{ __typename } ceiling (50 connections, 5 s)', 'runs (req/s)', 'median'],
        ['budgets on (Redis)', ceilings.on.map((r) => r.toFixed(0)).join(', '), median(ceilings.on).toFixed(0)],
        ['budgets off', ceilings.off.map((r) => r.toFixed(0)).join(', '), median(ceilings.off).toFixed(0)],
        ['on / off', '', ratio.toFixed(2)],
      ]) + '\n',
    );
  } finally {
    await on.stop();
    await off.stop();
    await cleanUpRun(config, database);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
