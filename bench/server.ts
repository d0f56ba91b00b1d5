import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import type { Config } from '../src/config.js';
import { dropDatabase } from '../src/infra/prisma/database.js';
import { freePort } from '../src/net.js';
import { Keys } from '../projections/redis-ordering/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface BenchServer {
  child: ChildProcess;
  base: string;
  /** SIGTERM, then its exit */
  stop(): Promise<void>;
}

/** A server process of the bench (`node [nodeArgs] --import tsx <script> [args]`), once its /readyz answers 200. */
export async function startServer(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  nodeArgs: readonly string[] = [],
): Promise<BenchServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = once(child, 'exit');
  const server: BenchServer = {
    child,
    base: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  try {
    while (
      !(await fetch(`${server.base}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode} before it was ready`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** A run's topics, Redis keys and database (`benchRun`'s) go with it: the shared services serve other users too. */
export async function cleanUpRun(
  config: Pick<Config, 'REDIS_URL' | 'REDIS_PREFIX' | 'KAFKA_BROKERS' | 'topics' | 'DATABASE_URL'>,
  database: string | null,
): Promise<void> {
  const redis = new Redis(config.REDIS_URL);
  try {
    const stream = redis.scanStream({ match: new Keys(config.REDIS_PREFIX).all(), count: 1000 });
    for await (const keys of stream as AsyncIterable<string[]>) if (keys.length > 0) await redis.unlink(...keys);
  } finally {
    redis.disconnect();
  }
  const admin = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [config.topics.events, config.topics.parked] }).catch(() => undefined);
  await admin.disconnect();
  if (database?.startsWith('fc_bench_')) await dropDatabase(config.DATABASE_URL);
}
