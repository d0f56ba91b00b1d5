import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { signToken } from '../../src/api/auth.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createRedis, Keys, scanKeys } from '../../projections/redis-ordering/index.js';
import { freePort } from '../../src/net.js';
import { freshDatabase } from './db.js';
import { eventually, pollUntil } from './wait.js';

/**
 * Test isolation: each suite gets its own topics (TOPIC_PREFIX), Redis keys (REDIS_PREFIX) and
 * database, so files run in parallel against the same real servers without colliding.
 */
export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Isolated {
  env: Record<string, string>;
  config: Config;
  cleanup(): Promise<void>;
}

export async function isolated(name: string, extra: Record<string, string> = {}): Promise<Isolated> {
  const id = `${name}-${randomBytes(4).toString('hex')}`;
  const db = await freshDatabase(name);
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    TOPIC_PREFIX: `t.${id}`,
    REDIS_PREFIX: `t:${id}`,
    DATABASE_URL: db.url,
    JWT_SECRET: TEST_JWT_SECRET,
    EVENT_PARTITIONS: '2',
    ENTER_WAIT_MS: '3000',
    ENTER_RATE_PER_SEC: '1000',
    // tests send requests in bursts from one address on purpose; edge-defences.e2e and hostile-clients.e2e set their own budgets
    RATE_LIMIT_IP_PER_SEC: '1000',
    RATE_LIMIT_IP_CEILING_PER_SEC: '100000',
    RATE_LIMIT_USER_COST_PER_SEC: '100000',
    RATE_LIMIT_ADMIN_COST_PER_SEC: '100000',
    WS_MAX_SOCKETS_PER_ADDRESS: '100000',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    ...extra,
  };
  const config = loadConfig({ ...process.env, ...env });
  return {
    env,
    config,
    async cleanup() {
      // the suite's own keys only (its prefix), on one Redis or on every primary of a cluster
      const redis = createRedis(config);
      for await (const keys of scanKeys(redis, new Keys(config.REDIS_PREFIX).all())) await Promise.all(keys.map((k) => redis.unlink(k)));
      redis.disconnect();
      const kafka = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [config.topics.events, config.topics.parked] }).catch(() => undefined);
      await admin.disconnect();
      await db.drop();
    },
  };
}

export { eventually, freePort };

export interface AppProcess {
  port: number;
  child: ChildProcess;
  output(): string;
  /** SIGTERM (graceful) or SIGKILL; resolves when the process is gone */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `npm start -- --roles …` as a real process and waits for /readyz to answer 200, or, with
 * `until: 'listening'`, only for /healthz (a process that is not meant to become ready).
 */
export async function spawnApp(
  iso: Isolated,
  roles: string,
  extraEnv: Record<string, string> = {},
  opts: { until?: 'ready' | 'listening' } = {},
): Promise<AppProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--roles', roles], {
    cwd: ROOT,
    env: { ...process.env, ...iso.env, PORT: String(port), ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  if (process.env.DEBUG_APP_LOGS) {
    const f = (await import('node:fs')).createWriteStream(`${process.env.DEBUG_APP_LOGS}/${roles}-${port}.log`);
    child.stdout!.pipe(f);
    child.stderr!.on('data', (d) => f.write(d));
  }
  const answer = await pollUntil(
    async () => {
      if (child.exitCode !== null) return 'exited';
      try {
        return (await fetch(`http://127.0.0.1:${port}/${opts.until === 'listening' ? 'healthz' : 'readyz'}`)).status;
      } catch {
        return 'not listening yet';
      }
    },
    (a) => a === 200 || a === 'exited',
    60_000,
    200,
  );
  if (answer.value === 'exited') throw new Error(`app exited with ${child.exitCode}:\n${out}`);
  if (!answer.ok) {
    child.kill('SIGKILL');
    throw new Error(`app not ready in 60 s:\n${out}`);
  }
  return {
    port,
    child,
    output: () => out,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      child.kill(signal);
      await gone;
    },
  };
}

export const token = (sub: string, role?: string | readonly string[]) => signToken(TEST_JWT_SECRET, { sub, role, expiresIn: '1h' });

export interface GqlResult<T = Record<string, unknown>> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string; field?: string; retryAfterMs?: number } }[];
}

export async function gql<T = Record<string, any>>(
  port: number,
  auth: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GqlResult<T>> {
  const r = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await r.json()) as GqlResult<T>;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** Runs a command of the repository (`npm run db:migrate`, `npm start`, …) to its end; its output, both streams. */
export async function runToEnd(
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output };
}
