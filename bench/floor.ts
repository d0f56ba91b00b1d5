import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { signToken, tokenShape } from '../src/api/auth.js';
import { table } from '../src/cli/crowd.js';
import { loadConfig } from '../src/config.js';
import { migrate } from '../src/infra/prisma/migrate.js';
import { stackUp } from '../scripts/stack.js';
import { FLOOR_CAMPAIGNS, FLOOR_CLIENTS, FLOOR_STEPS, floorClientOf, type FloorClient, type FloorStep } from './floor/steps.js';
import { wrkGenerator, wrkOnPath } from './load/wrk.js';
import { cpuMsOf, listenerPid } from './procCpu.js';
import { benchRun } from './run.js';
import { cleanUpRun, startServer, type BenchServer } from './server.js';

/**
 * `npm run bench:floor`: what the log alone costs an `enter`, rung by rung, in one run against one
 * server process (bench/floor/server.ts): the `{ __typename }` ceiling, then `enter` answered with no
 * I/O, after its append, after a consumer read it back, and after that consumer committed a winner's
 * events in a Kafka transaction (bench/floor/steps.ts). Each rung is a lower bound for the real
 * write path, which does all of it and more (the Redis gate and line, replies through Redis, the
 * read side into Postgres): the ratio a rung reaches is the most any design on this stack can reach
 * on this machine. The ratios are to the floor server's own ceiling, and to the ceiling of the real
 * server (`src/main.ts`) with every role and with `api,writer`, measured before the rungs and after
 * them: the ceilings `npm run bench` divides by. The real path's own figures come from `npm run bench`.
 */
const opts = new Command()
  .option('--duration <s>', 'seconds per phase', (v) => Number(v), 10)
  .option('--connections <n>', 'concurrent connections', (v) => Number(v), 100)
  .option('--wrk-threads <n>', 'wrk threads', (v) => Number(v), 2)
  .option(
    '--client <names>',
    `Kafka clients of the log path, comma-separated, each measured in turn (${FLOOR_CLIENTS.join(', ')})`,
    'kafkajs',
  )
  .parse()
  .opts<{ duration: number; connections: number; wrkThreads: number; client: string }>();
const clients = [...new Set(opts.client.split(',').map((c) => floorClientOf(c.trim())))];

const ROOT = fileURLToPath(new URL('..', import.meta.url));

type Deployment = 'all' | 'api,writer';

async function main() {
  if (!wrkOnPath()) throw new Error('bench:floor needs wrk on PATH (Debian: apt-get install -y wrk)');
  await stackUp({ root: ROOT });
  const { database, env: own } = benchRun('floor');
  // the real servers and the floor's have topics of their own: neither reads the other's records
  const realEnv = {
    ...process.env,
    LOG_LEVEL: 'warn',
    ENTER_RATE_PER_SEC: '1000',
    // the whole crowd comes from this one address: a ceiling it never reaches, still counted in Redis
    RATE_LIMIT_IP_CEILING_PER_SEC: '10000000',
    ...own,
  };
  // each client's floor server has topics of its own too
  const floorEnv = (client: FloorClient) => ({
    ...realEnv,
    TOPIC_PREFIX: `${own.TOPIC_PREFIX}.floor-${client}`,
    FLOOR_CLIENT: client,
    // the edge's budgets off but `enter`'s own (it cannot be): the floor's one Redis call
    RATE_LIMIT_IP_CEILING_PER_SEC: '0',
    RATE_LIMIT_IP_PER_SEC: '0',
    RATE_LIMIT_USER_COST_PER_SEC: '0',
    RATE_LIMIT_ADMIN_COST_PER_SEC: '0',
  });
  const real = loadConfig(realEnv);
  const config = loadConfig(floorEnv(clients[0]!));
  await migrate(real.DATABASE_URL);
  const load = wrkGenerator(await tokens(config, opts.duration * 8000), opts.wrkThreads);
  const brokerPid = listenerPid(Number(config.KAFKA_BROKERS[0]!.split(':').at(-1)));
  type Measured = Awaited<ReturnType<typeof phase>>;
  const phase = async (server: BenchServer, name: string, query: string, duration = opts.duration) => {
    const pid = server.child.pid;
    const cpu0 = { server: cpuMsOf(pid), broker: cpuMsOf(brokerPid) };
    const r = await load.run({ url: server.base, connections: opts.connections, duration, body: JSON.stringify({ query }) });
    const n = Math.max(1, r.requests);
    const cpu = {
      server: ((cpuMsOf(pid) - cpu0.server) * 1000) / n,
      broker: ((cpuMsOf(brokerPid) - cpu0.broker) * 1000) / n,
      load: (r.cpuMs * 1000) / n,
    };
    process.stdout.write(`${name}: ${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}\n`);
    return { name, ...r, cpu };
  };
  /** the ceiling of the real server (`src/main.ts`) in a deployment, which the issue's floors are ratios to */
  const realCeiling = async (roles: Deployment): Promise<Measured> => {
    const server = await startServer('src/main.ts', roles === 'all' ? [] : ['--roles', roles], realEnv);
    try {
      await phase(server, 'warm-up', '{ __typename }', 5);
      return await phase(server, `ceiling, ${roles === 'all' ? 'npm start (every role)' : roles}`, '{ __typename }');
    } finally {
      await server.stop();
    }
  };
  const enterQuery = (step: FloorStep) =>
    `mutation { enter(campaignId: "${FLOOR_CAMPAIGNS[step]}") { rejection entry { ticket status position } } }`;

  try {
    // the real ceilings before and after the rungs: a slow moment of the shared machine weighs on both sides
    const realBefore = { all: await realCeiling('all'), 'api,writer': await realCeiling('api,writer') };
    const floors: { client: FloorClient; before: Measured; rungs: Measured[]; after: Measured }[] = [];
    for (const client of clients) {
      const server = await startServer('bench/floor/server.ts', [], floorEnv(client));
      try {
        await phase(server, `${client}: warm-up`, '{ __typename }', 5);
        await phase(server, `${client}: warm-up`, enterQuery('decide'), 5);
        const before = await phase(server, `${client}: ceiling { __typename }`, '{ __typename }');
        const rungs: Measured[] = [];
        for (const step of FLOOR_STEPS) rungs.push(await phase(server, `${client}: enter: ${step}`, enterQuery(step)));
        floors.push({ client, before, rungs, after: await phase(server, `${client}: ceiling again`, '{ __typename }') });
      } finally {
        await server.stop();
      }
    }
    const realAfter = { 'api,writer': await realCeiling('api,writer'), all: await realCeiling('all') };
    const ceilingOf = (d: Deployment) => (realBefore[d].rps + realAfter[d].rps) / 2;

    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '-');
    const row = (p: Measured, own: number | null) => {
      const total = p.cpu.server + p.cpu.broker + p.cpu.load;
      const x = (c: number) => (own !== null ? (p.rps / c).toFixed(2) : '');
      return [
        p.name,
        Math.round(p.rps),
        p.p50,
        p.p99,
        own !== null ? x(own) : '',
        x(ceilingOf('all')),
        x(ceilingOf('api,writer')),
        p.errors,
        f(p.cpu.server),
        f(p.cpu.broker),
        f(p.cpu.load),
        f(total),
      ];
    };
    const out = table([
      [
        'phase',
        'req/s',
        'p50 ms',
        'p99 ms',
        'x own ceiling',
        'x all roles',
        'x api,writer',
        'errors',
        'server µs',
        'broker µs',
        'load gen µs',
        'total µs',
      ],
      ...[realBefore.all, realBefore['api,writer']].map((p) => row(p, null)),
      ...floors.flatMap((f) => [f.before, ...f.rungs, f.after].map((p) => row(p, (f.before.rps + f.after.rps) / 2))),
      ...[realAfter['api,writer'], realAfter.all].map((p) => row(p, null)),
    ]);
    // each client's rungs against the first client's, and against their own server's ceiling
    const lift = floors.slice(1).map((f) =>
      FLOOR_STEPS.slice(1)
        .map((step, i) => `${step} ${(f.rungs[i + 1]!.rps / floors[0]!.rungs[i + 1]!.rps).toFixed(2)}x`)
        .join(', '),
    );
    const lifts = floors.slice(1).map((f, i) => `${f.client} against ${floors[0]!.client}: ${lift[i]}`);
    const footer =
      `clients: ${clients.join(', ')}; ratios: to the floor server's own ceiling (the mean of its two ceiling phases), and to the real server's in each deployment (the mean of its phase before the rungs and after them); ` +
      `CPU is per request, from /proc; KAFKA_COMPRESSION=${config.KAFKA_COMPRESSION}, APPEND_LINGER_MS=${config.APPEND_LINGER_MS}, WRITER_COMMIT_MS=${config.WRITER_COMMIT_MS}; ${opts.connections} connections, ${opts.duration} s per phase; ${load.describe}; ${new Date().toISOString()}`;
    const text = `${out}\n\n${lifts.map((l) => `${l}\n`).join('')}${footer}\n`;
    process.stdout.write(`\n${text}`);
    mkdirSync(`${ROOT}/bench/results`, { recursive: true });
    writeFileSync(`${ROOT}/bench/results/floor-latest.txt`, text);
  } finally {
    load.close();
    for (const client of clients) await cleanUpRun(loadConfig(floorEnv(client)), null);
    await cleanUpRun(real, database);
  }
}

/** One token per user, signed before the clock starts (the per-user limit stays out of the way). */
function tokens(config: ReturnType<typeof loadConfig>, count: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) => signToken(config.JWT_SECRET, { sub: `floor-${i}`, expiresIn: '1h' }, tokenShape(config))),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
