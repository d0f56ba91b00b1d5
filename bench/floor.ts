import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { Kafka, logLevel } from 'kafkajs';
import { signToken, tokenShape } from '../src/api/auth.js';
import { table } from '../src/cli/crowd.js';
import { loadConfig } from '../src/config.js';
import { stackUp } from '../scripts/stack.js';
import { FLOOR_CAMPAIGNS, FLOOR_STEPS, type FloorStep } from './floor/steps.js';
import { wrkGenerator, wrkOnPath } from './load/wrk.js';
import { cpuMsOf, listenerPid } from './procCpu.js';
import { benchRun } from './run.js';

/**
 * `npm run bench:floor`: what the log alone costs an `enter`, rung by rung, in one run against one
 * server process (bench/floor/server.ts): the `{ __typename }` ceiling, then `enter` answered with no
 * I/O, after its append, after a consumer read it back, and after that consumer committed a winner's
 * events in a Kafka transaction (bench/floor/steps.ts). Each rung is a lower bound for the real
 * write path, which does all of it and more (the Redis gate and line, replies through Redis, the
 * read side into Postgres): the ratio a rung reaches is the most any design on this stack can reach
 * on this machine. The real path's figures come from `npm run bench -- --roles all`.
 */
const opts = new Command()
  .option('--duration <s>', 'seconds per phase', (v) => Number(v), 10)
  .option('--connections <n>', 'concurrent connections', (v) => Number(v), 100)
  .option('--wrk-threads <n>', 'wrk threads', (v) => Number(v), 2)
  .parse()
  .opts<{ duration: number; connections: number; wrkThreads: number }>();

const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function main() {
  if (!wrkOnPath()) throw new Error('bench:floor needs wrk on PATH (Debian: apt-get install -y wrk)');
  await stackUp({ root: ROOT, services: ['kafka'] });
  const { env: own } = benchRun('floor');
  const serverEnv = { LOG_LEVEL: 'warn', ENTER_RATE_PER_SEC: '1000', TOPIC_PREFIX: own.TOPIC_PREFIX };
  const config = loadConfig({ ...process.env, ...serverEnv });
  const srv = (await import('node:net')).createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  const server = spawn(process.execPath, ['--import', 'tsx', 'bench/floor/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...serverEnv, KAFKA_COMPRESSION: config.KAFKA_COMPRESSION, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = once(server, 'exit');
  const base = `http://127.0.0.1:${port}`;
  const load = wrkGenerator(await tokens(config, opts.duration * 8000), opts.wrkThreads);
  try {
    while (!(await fetch(`${base}/readyz`).then((r) => r.ok, () => false))) {
      if (server.exitCode !== null) throw new Error(`the floor server exited with ${server.exitCode}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const brokerPid = listenerPid(Number(config.KAFKA_BROKERS[0]!.split(':').at(-1)));
    const phase = async (name: string, query: string, duration = opts.duration) => {
      const cpu0 = { server: cpuMsOf(server.pid), broker: cpuMsOf(brokerPid) };
      const r = await load.run({ url: base, connections: opts.connections, duration, body: JSON.stringify({ query }) });
      const n = Math.max(1, r.requests);
      const cpu = { server: ((cpuMsOf(server.pid) - cpu0.server) * 1000) / n, broker: ((cpuMsOf(brokerPid) - cpu0.broker) * 1000) / n, load: (r.cpuMs * 1000) / n };
      process.stdout.write(`${name}: ${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}\n`);
      return { name, ...r, cpu };
    };
    const enterQuery = (step: FloorStep) => `mutation { enter(campaignId: "${FLOOR_CAMPAIGNS[step]}") { rejection entry { ticket status position } } }`;

    await phase('warm-up', '{ __typename }', 5);
    await phase('warm-up', enterQuery('decide'), 5);
    const before = await phase('ceiling { __typename }', '{ __typename }');
    const rungs = [];
    for (const step of FLOOR_STEPS) rungs.push(await phase(`enter: ${step}`, enterQuery(step)));
    const after = await phase('ceiling again', '{ __typename }');
    const ceiling = (before.rps + after.rps) / 2;

    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '-');
    const rows = [before, ...rungs, after].map((p) => {
      const total = p.cpu.server + p.cpu.broker + p.cpu.load;
      return [p.name, Math.round(p.rps), p.p50, p.p99, (p.rps / ceiling).toFixed(2), p.errors, f(p.cpu.server), f(p.cpu.broker), f(p.cpu.load), f(total)];
    });
    const out = table([['phase', 'req/s', 'p50 ms', 'p99 ms', 'x ceiling', 'errors', 'server µs', 'broker µs', 'load gen µs', 'total µs'], ...rows]);
    const footer = `the ceiling is the mean of the two ceiling phases; CPU is per request, from /proc; KAFKA_COMPRESSION=${config.KAFKA_COMPRESSION}, APPEND_LINGER_MS=${config.APPEND_LINGER_MS}, DECIDER_COMMIT_MS=${config.DECIDER_COMMIT_MS}; ${opts.connections} connections, ${opts.duration} s per phase; ${load.describe}; ${new Date().toISOString()}`;
    process.stdout.write(`\n${out}\n\n${footer}\n`);
    mkdirSync(`${ROOT}/bench/results`, { recursive: true });
    writeFileSync(`${ROOT}/bench/results/floor-latest.txt`, `${out}\n\n${footer}\n`);
  } finally {
    load.close();
    server.kill('SIGTERM');
    await exited;
    const admin = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [config.topics.events, config.topics.parked] }).catch(() => undefined);
    await admin.disconnect();
  }
}

/** One token per user, signed before the clock starts (the per-user limit stays out of the way). */
function tokens(config: ReturnType<typeof loadConfig>, count: number): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => signToken(config.JWT_SECRET, { sub: `floor-${i}`, expiresIn: '1h' }, tokenShape(config))));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
