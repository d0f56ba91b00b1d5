import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { signToken, tokenShape } from '../src/api/auth.js';
import { createClient, runPool, table } from '../src/cli/crowd.js';
import { solvePowFast, type ChallengeShape } from '../src/cli/pow.js';
import { loadConfig } from '../src/config.js';
import { migrate } from '../src/infra/prisma/migrate.js';
import { createPrisma } from '../src/infra/prisma/client.js';
import { stackUp } from '../scripts/stack.js';
import { settledTopicBytes, topicBytes } from './logSize.js';
import { autocannonGenerator } from './load/autocannon.js';
import type { LoadGenerator } from './load/generator.js';
import { wrkGenerator, wrkOnPath } from './load/wrk.js';
import { backendsCpuMsBetween, cpuMsOf, listenerPid, redisServerPid, sampleBackends } from './procCpu.js';
import { benchRun } from './run.js';
import { cleanUpRun, startServer } from './server.js';

/**
 * `npm run bench`: in one run against one server process, the `{ __typename }` ceiling, `enter` by
 * fresh users, and `enter` on a sold-out campaign, each as req/s, p50/p99, errors and a ratio to the
 * ceiling (the machines are shared and noisy: ratios measured together are what compare), and the
 * CPU each process on the path spends per request: server, broker, Redis, Postgres, load generator.
 * The load comes from wrk where it is installed (bench/load/wrk.ts), else from autocannon.
 */
const opts = new Command()
  .option('--duration <s>', 'seconds per phase', (v) => Number(v), 10)
  .option('--connections <n>', 'concurrent connections', (v) => Number(v), 100)
  // the roles that answer `enter` (the default); `all` is every role in one process, as `npm start`
  .option('--roles <roles>', "roles of the server process ('all': every role, as npm start)", 'api,writer')
  // KAFKA_COMPRESSION of the server; the phase of fresh users then also says the log's bytes per entry
  .option('--compression <codec>', 'KAFKA_COMPRESSION of the server (default: the environment, else the configured default)')
  .option('--generator <name>', "load generator: 'wrk' (the default where it is on PATH) or 'autocannon'")
  // 2: the same CPU per request as 1, and a higher ceiling in four of five pairs on the shared
  // machine: while one thread waits for a core, it holds half the connections back, not all (README)
  .option('--wrk-threads <n>', 'wrk threads', (v) => Number(v), 2)
  // issue 34: a phase of fresh users on a POW campaign, beside the OFF one
  .option(
    '--challenge <mode>',
    "'pow' adds a phase of fresh users on a proof-of-work campaign, each with a solution solved before the phase",
    'off',
  )
  .option('--pow-difficulty <n>', 'maxnumber of the POW phase', (v) => Number(v), 1000)
  .option('--pow-users <n>', 'users the POW phase solves a challenge for beforehand (it stops with an error if it runs out)', (v) =>
    Number(v),
  )
  .parse()
  .opts<{
    duration: number;
    connections: number;
    roles: string;
    compression?: string;
    generator?: string;
    wrkThreads: number;
    challenge: string;
    powDifficulty: number;
    powUsers?: number;
  }>();
if (opts.challenge !== 'off' && opts.challenge !== 'pow') throw new Error(`--challenge: off or pow, not ${opts.challenge}`);
if (opts.generator !== undefined && opts.generator !== 'wrk' && opts.generator !== 'autocannon')
  throw new Error(`--generator: wrk or autocannon, not ${opts.generator}`);
if (opts.generator === 'wrk' && !wrkOnPath()) throw new Error('--generator wrk: wrk is not on PATH (Debian: apt-get install -y wrk)');
/** `src/main.ts` runs every role when it is given none */
const rolesArgs = opts.roles === 'all' ? [] : ['--roles', opts.roles];
/** the server projects into Postgres: the fresh phase's settle time is measured */
const readSide = opts.roles === 'all' || opts.roles.split(',').some((r) => r.trim() === 'projector');

const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function main() {
  await stackUp({ root: ROOT });
  const { run, database, env: own } = benchRun('enter');
  const serverEnv: Record<string, string> = {
    LOG_LEVEL: 'warn',
    ENTER_RATE_PER_SEC: '1000',
    // the whole crowd comes from this one address: a ceiling it never reaches, still counted in Redis
    RATE_LIMIT_IP_CEILING_PER_SEC: '10000000',
    ...own,
    ...(opts.compression ? { KAFKA_COMPRESSION: opts.compression } : {}),
  };
  const config = loadConfig({ ...process.env, ...serverEnv });
  await migrate(config.DATABASE_URL);
  const nodeArgs = [
    ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
    // V8 flags for the server alone (e.g. --trace-gc), which NODE_OPTIONS refuses
    ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  let stop: (() => Promise<void>) | undefined;
  let generator: LoadGenerator | undefined;
  try {
    const server = await startServer(
      'src/main.ts',
      rolesArgs,
      { ...process.env, ...serverEnv, KAFKA_COMPRESSION: config.KAFKA_COMPRESSION },
      nodeArgs,
    );
    stop = () => server.stop();
    const { base } = server;
    const admin = await signToken(config.JWT_SECRET, { sub: 'bench-admin', role: 'admin', expiresIn: '1h' }, tokenShape(config));
    const client = createClient(base, 4);
    const create = async (id: string, stock: number, challenge?: { mode: 'POW'; difficulty: number }) => {
      const r = await client.post<{ errors?: unknown }>(admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
        i: {
          id,
          title: 'bench',
          reward: 'bench',
          stock,
          closesAt: new Date(Date.now() + 3_600_000).toISOString(),
          ...(challenge ? { challenge } : {}),
        },
      });
      if (r.body.errors) throw new Error(JSON.stringify(r.body.errors));
    };
    const open = `bench-open-${run}`;
    const soldOut = `bench-soldout-${run}`;
    await create(open, 10_000_000);
    await create(soldOut, 1);
    const powCampaign = `bench-pow-${run}`;
    if (opts.challenge === 'pow') await create(powCampaign, 10_000_000, { mode: 'POW', difficulty: opts.powDifficulty });
    await client.post(admin, `mutation { enter(campaignId: "${soldOut}") { rejection } }`);
    client.close();

    // fresh users: one token each, signed before the clock starts
    const expected = opts.duration * 8000;
    process.stdout.write(`signing ${expected} user tokens… `);
    const tokens = await Promise.all(
      Array.from({ length: expected }, (_, i) =>
        signToken(config.JWT_SECRET, { sub: `b${run}-${i}`, expiresIn: '1h' }, tokenShape(config)),
      ),
    );
    process.stdout.write('done\n');
    const load: LoadGenerator =
      opts.generator === 'autocannon'
        ? autocannonGenerator(tokens, '--generator autocannon')
        : wrkOnPath()
          ? wrkGenerator(tokens, opts.wrkThreads)
          : autocannonGenerator(tokens, 'wrk is not on PATH: apt-get install -y wrk');
    generator = load;

    // CPU of every process on the path, from /proc (Linux): where a phase's work goes, per request
    // the first broker, whoever started it
    const brokerPid = listenerPid(Number(config.KAFKA_BROKERS[0]!.split(':').at(-1)));
    const redisPid = await redisServerPid(config.REDIS_URL);
    const cpuNow = () => ({
      server: cpuMsOf(server.child.pid),
      broker: cpuMsOf(brokerPid),
      redis: cpuMsOf(redisPid),
      postgres: sampleBackends(database),
    });

    const phase = async (name: string, query: string, fresh: boolean, duration = opts.duration, by: LoadGenerator = load) => {
      const cpu0 = cpuNow();
      const result = await by.run({ url: base, connections: opts.connections, duration, body: JSON.stringify({ query }) });
      const cpu1 = cpuNow();
      // a user twice would not be fresh: the phase must end before the tokens run out
      if (fresh && result.reused > 0)
        throw new Error(
          `${name}: ${result.reused} requests reused a token of the phase's fresh users; raise the token count${by === load ? '' : ' (--pow-users)'}`,
        );
      const n = Math.max(1, result.requests);
      // µs per request
      const cpu = {
        server: ((cpu1.server - cpu0.server) * 1000) / n,
        broker: ((cpu1.broker - cpu0.broker) * 1000) / n,
        redis: ((cpu1.redis - cpu0.redis) * 1000) / n,
        postgres: (backendsCpuMsBetween(cpu0.postgres, cpu1.postgres) * 1000) / n,
        load: (result.cpuMs * 1000) / n,
      };
      const { rps, requests: total, p50, p99, errors } = result;
      process.stdout.write(`${name}: ${Math.round(rps)} req/s, p50 ${p50} ms, p99 ${p99} ms, errors ${errors}\n`);
      return { name, rps, total, p50, p99, errors, cpu };
    };

    /** The server at rest (< 5% of a core over half a second): what the last phase set going has finished. */
    const idle = async (maxS = 60) => {
      for (let i = 0; i < maxS * 2; i++) {
        const t0 = cpuMsOf(server.child.pid);
        await new Promise((r) => setTimeout(r, 500));
        if (cpuMsOf(server.child.pid) - t0 < 25) return;
      }
    };

    /**
     * Fresh users on the POW campaign, after the OFF phase. Each fetches its challenge over GraphQL
     * and solves it before the phase starts (challenges live a minute: fetched and solved within
     * ~30 s), so the phase measures the server's side of an entry with a solution.
     */
    const powPhase = async () => {
      await idle();
      const users = opts.powUsers ?? opts.duration * 1000;
      process.stdout.write(`POW phase: signing ${users} tokens, fetching and solving their challenges… `);
      const powTokens = await Promise.all(
        Array.from({ length: users }, (_, i) => signToken(config.JWT_SECRET, { sub: `p${run}-${i}`, expiresIn: '1h' }, tokenShape(config))),
      );
      const c = createClient(base, 16);
      const bodies: string[] = new Array(users);
      const t0 = performance.now();
      // the last fetched first: the phase sends from the first token on, so those it surely sends are
      // the freshest (15,000 took 43 s to fetch and solve here, against a challenge's minute)
      const order = [...powTokens.keys()].reverse();
      await runPool(order, 16, async (i) => {
        const r = await c.post<{ data?: { challenge: ChallengeShape }; errors?: unknown }>(
          powTokens[i]!,
          `query($c: ID!) { challenge(campaignId: $c) { algorithm challenge salt signature maxnumber } }`,
          { c: powCampaign },
        );
        if (!r.body.data?.challenge) throw new Error(`challenge: ${JSON.stringify(r.body.errors)}`);
        const query = `mutation($s: String) { enter(campaignId: "${powCampaign}", solution: $s) { rejection entry { ticket status position } } }`;
        bodies[i] = JSON.stringify({ query, variables: { s: solvePowFast(r.body.data.challenge) } });
      });
      c.close();
      process.stdout.write(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      const powLoad =
        opts.generator === 'autocannon' || !wrkOnPath()
          ? autocannonGenerator(powTokens, 'as the other phases', bodies)
          : wrkGenerator(powTokens, opts.wrkThreads, bodies);
      try {
        // not long: the challenges live a minute from their fetch
        await idle(5);
        const p = await phase('enter, fresh users, POW', '', true, opts.duration, powLoad);
        // every request carried a good solution: each must have entered (a refusal is a 200 without "errors")
        await idle();
        const a = createClient(base, 1);
        const r = await a.post<{ data?: { campaign: { entrants: number } } }>(admin, `query($c: ID!) { campaign(id: $c) { entrants } }`, {
          c: powCampaign,
        });
        a.close();
        const entrants = r.body.data?.campaign.entrants ?? 0;
        // requests still in flight when the phase ended are not counted as answered, but may have entered
        process.stdout.write(`POW phase: ${entrants} entrants, ${p.total - p.errors} requests answered without error\n`);
        return { ...p, errors: p.errors + Math.max(0, p.total - p.errors - entrants) };
      } finally {
        powLoad.close();
      }
    };

    // warm-up (JIT, connection pools), not counted; the ceiling is measured before and after the
    // sold-out phase and averaged, so a slow moment of the shared machine weighs on both sides
    await phase('warm-up', '{ __typename }', false, 5);
    const before = await phase('ceiling { __typename }', '{ __typename }', false);
    const sold = await phase('enter, sold out', `mutation { enter(campaignId: "${soldOut}") { rejection entry { ticket } } }`, false);
    const after = await phase('ceiling again', '{ __typename }', false);
    const ceiling = {
      name: 'ceiling { __typename }',
      rps: (before.rps + after.rps) / 2,
      total: before.total + after.total,
      p50: Math.max(before.p50, after.p50),
      p99: Math.max(before.p99, after.p99),
      errors: before.errors + after.errors,
      cpu: before.cpu,
    };
    // last: the decisions it causes keep the projector busy for a while after it
    const scrape = () =>
      fetch(`${base}/metrics`)
        .then((r) => r.text())
        .then(parseMetrics);
    const m0 = await scrape();
    const events = config.topics.events;
    const bytes0 = await topicBytes(config.KAFKA_BROKERS, events);
    const enter = await phase(
      'enter, fresh users',
      `mutation { enter(campaignId: "${open}") { rejection entry { ticket status position } } }`,
      true,
    );
    const settling = readSide ? settleTime(config.DATABASE_URL, open, enter.total - enter.errors) : null;
    const m1 = await scrape();
    // every fresh entry wins (the stock is 10,000,000): EntrantRegistered, WinnerSelected, GifticonIssued each
    const entries = Math.max(1, enter.total - enter.errors);
    const logBytes = `log bytes per entry (${config.KAFKA_COMPRESSION}): ${(((await settledTopicBytes(config.KAFKA_BROKERS, events)) - bytes0) / entries) | 0} (${events} in the broker's log dirs, DescribeLogDirs, over ${entries} entries with their decisions)`;
    // after the log's bytes of the OFF phase are counted
    const pow = opts.challenge === 'pow' ? await powPhase() : null;

    const rows = [ceiling, enter, ...(pow ? [pow] : []), sold].map((p) => [
      p.name,
      Math.round(p.rps),
      p.p50,
      p.p99,
      (p.rps / ceiling.rps).toFixed(2),
      p.errors,
    ]);
    const out = table([['phase', 'req/s', 'p50 ms', 'p99 ms', 'x ceiling', 'errors'], ...rows]);
    // where a fresh enter's time goes, from the server's own stage histograms over that phase
    const d = (name: string) => (m1.get(name) ?? 0) - (m0.get(name) ?? 0);
    const stages = ['append', 'decide', 'commit', 'decision'].map((st) => {
      const n = d(`firstcome_stage_seconds_count{stage="${st}"}`);
      const size = d(`firstcome_batch_size_sum{stage="${st}"}`);
      return [
        st,
        n,
        n ? ((d(`firstcome_stage_seconds_sum{stage="${st}"}`) / n) * 1000).toFixed(1) : '-',
        n && size ? (size / n).toFixed(1) : '-',
      ];
    });
    const where = table([['stage (fresh users)', 'count', 'mean ms', 'mean batch'], ...stages]);
    // the read side during the burst: how much each of its transactions carried, and how long after
    // the last answer Postgres held every gifticon (with every role, the settle budget is 1 s)
    const settled = await settling;
    const projected = d('firstcome_projector_events_total');
    const transactions = d('firstcome_projector_batches_total');
    const readSideLine = settled
      ? `read side: ${projected} events in ${transactions} transactions during the fresh phase (${transactions ? (projected / transactions).toFixed(0) : '-'} per transaction); settle ${settled.toFixed(2)} s (the phase's end until Postgres held every accepted entry's gifticon)`
      : '';
    // with every role in one process, the server's CPU includes the read side's work for the phase
    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '-');
    const cpuRows = [before, enter, ...(pow ? [pow] : []), sold].map((p) => {
      const c = p.cpu;
      return [
        p.name,
        f(c.server),
        f(c.broker),
        f(c.redis),
        f(c.postgres),
        f(c.load),
        f(c.server + c.broker + c.redis + c.postgres + c.load),
      ];
    });
    const cpuTable = table([['CPU µs per request', 'server', 'broker', 'redis', 'postgres', 'load gen', 'total'], ...cpuRows]);
    const powNote = pow
      ? `\nPOW phase: difficulty (maxnumber) ${opts.powDifficulty}; its crowd fetched a challenge each over GraphQL and solved it (node:crypto) before the phase, so the solver's CPU did not compete with the server's; the server's CPU per request includes checking and spending each solution`
      : '';
    const footer = `server roles: ${opts.roles}; KAFKA_COMPRESSION=${config.KAFKA_COMPRESSION}; ${opts.connections} connections, ${opts.duration} s per phase; load generator: ${load.describe}; ${new Date().toISOString()}${powNote}`;
    const report = [out, where, cpuTable, logBytes, readSideLine, footer].filter(Boolean).join('\n\n');
    process.stdout.write(`\n${report}\n`);
    mkdirSync(`${ROOT}/bench/results`, { recursive: true });
    writeFileSync(`${ROOT}/bench/results/enter-latest.txt`, `${report}\n`);
  } finally {
    generator?.close();
    await stop?.();
    await cleanUpRun(config, database);
  }
}

/**
 * Seconds from now until Postgres holds at least `want` gifticons of the campaign (every fresh entry
 * of the bench wins, and its GifticonIssued is the last event the read side applies for it). Polled
 * every 25 ms with one count query.
 */
async function settleTime(databaseUrl: string, campaignId: string, want: number): Promise<number> {
  const t0 = performance.now();
  const prisma = createPrisma(databaseUrl, { poolSize: 1 });
  try {
    while ((await prisma.gifticon.count({ where: { campaignId } })) < want) {
      if (performance.now() - t0 > 300_000) throw new Error(`the read side did not hold ${want} gifticons of ${campaignId} within 300 s`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return (performance.now() - t0) / 1000;
  } finally {
    await prisma.$disconnect();
  }
}

/** Prometheus text → sample name with labels → value (histograms' _sum/_count lines included). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
