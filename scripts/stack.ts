/**
 * `npm run stack:up` / `npm run stack:down`: the local services firstcome needs.
 *
 * up   — for each of Kafka, Redis and Postgres: if the configured address already answers, reuse
 *        it; otherwise start one on 127.0.0.1 and wait until it answers.
 *          Kafka:    a real single-node Apache Kafka (KRaft) from Maven Central artifacts, cached
 *                    in .cache/kafka/libs; data (the store of record) in .stack/kafka/data, kept
 *                    across down/up.
 *          Redis:    `redis-server` from PATH, nothing kept on disk.
 *          Postgres: a private cluster under .stack/pg (initdb + pg_ctl), trust auth.
 *        The target database of DATABASE_URL is created if missing.
 * down — stops only what `up` started (.stack/<service>.pid) and removes those pid files.
 *
 * --cluster: instead, a 3-node Kafka (127.0.0.1:19092-19094) and a Redis Cluster of 3 primaries
 *        with a replica each (127.0.0.1:17000-17005), in .stack/cluster/ (scripts/stack/cluster.ts);
 *        `up` prints the environment that points firstcome at them.
 *
 * Library use (tests, demo): `await stackUp()` / `await stackDown()`.
 *
 * This file runs the services side by side and reports; each service lives in scripts/stack/
 * (kafka.ts with kafkaLibs.ts and kafkaProperties.ts, redis.ts, postgres.ts) on the shared
 * process.ts (pid files, spawn, stop), lock.ts, probe.ts and paths.ts.
 */
import * as fs from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { clusterDown, clusterUp } from './stack/cluster.js';
import { downKafka, upKafka } from './stack/kafka.js';
import { defaultRoot, paths } from './stack/paths.js';
import { downPostgres, upPostgres } from './stack/postgres.js';
import { downRedis, upRedis } from './stack/redis.js';
import { StackError, formatResult, type DownResult, type ServiceName, type ServiceResult } from './stack/results.js';

export { CLUSTER_KAFKA_PORTS, CLUSTER_REDIS_PORTS, clusterEnv } from './stack/cluster.js';
export { DEFAULT_KAFKA_BROKERS, kafkaAnswers } from './stack/kafka.js';
export { KAFKA_VERSION } from './stack/kafkaLibs.js';
export { kafkaServerProperties, type KafkaPropsInput } from './stack/kafkaProperties.js';
export { DEFAULT_DATABASE_URL } from './stack/postgres.js';
export { DEFAULT_REDIS_URL } from './stack/redis.js';
export { StackError, formatResult, type DownResult, type ServiceName, type ServiceResult, type ServiceStatus } from './stack/results.js';

export interface StackOptions {
  /** repository root; defaults to the parent of scripts/ */
  root?: string;
  /** environment to read KAFKA_BROKERS / REDIS_URL / DATABASE_URL from; defaults to process.env */
  env?: NodeJS.ProcessEnv;
  /** progress lines (one per service when done, plus notes on slow steps); default: silent */
  log?: (line: string) => void;
  /** which services; default all three */
  services?: ServiceName[];
  /** how long to wait for a started Kafka to answer; default 60 000 ms (90 000 when formatting fresh) */
  kafkaReadyTimeoutMs?: number;
}

const ALL_SERVICES: ServiceName[] = ['kafka', 'redis', 'postgres'];

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) / 100) / 10;
}

/**
 * Make Kafka, Redis and Postgres answer, starting what is missing. Resolves with one result per
 * service; rejects with a StackError (carrying all results) when any service failed.
 */
export async function stackUp(opts: StackOptions = {}): Promise<ServiceResult[]> {
  const p = paths(opts.root ?? defaultRoot());
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  const services = opts.services ?? ALL_SERVICES;
  fs.mkdirSync(p.stack, { recursive: true });

  const one = async (name: ServiceName): Promise<ServiceResult> => {
    const t0 = performance.now();
    let r: ServiceResult;
    try {
      const res =
        name === 'kafka'
          ? await upKafka(p, env, opts.kafkaReadyTimeoutMs, log)
          : name === 'redis'
            ? await upRedis(p, env)
            : await upPostgres(p, env);
      r = { ...res, seconds: elapsed(t0) };
    } catch (e) {
      r = { name, status: 'failed', address: '-', seconds: elapsed(t0), detail: e instanceof Error ? e.message : String(e) };
    }
    log(formatResult(r));
    return r;
  };
  // Probes run side by side; each service's start is independent of the others.
  const results = await Promise.all(services.map(one));
  const failed = results.filter((r) => r.status === 'failed');
  if (failed.length) {
    throw new StackError(`stack:up failed for ${failed.map((f) => f.name).join(', ')}`, results);
  }
  return results;
}

/** Stop only what stackUp started (the .stack/*.pid files) and remove those pid files. */
export async function stackDown(opts: Pick<StackOptions, 'root' | 'log' | 'services'> = {}): Promise<DownResult[]> {
  const p = paths(opts.root ?? defaultRoot());
  const log = opts.log ?? (() => undefined);
  const services = opts.services ?? ALL_SERVICES;

  const one = async (name: ServiceName): Promise<DownResult> => {
    const t0 = performance.now();
    const pidFile = p.pidFile(name);
    let r: DownResult;
    try {
      if (!fs.existsSync(pidFile)) {
        r = { name, status: 'untouched', seconds: 0, detail: 'not started by stack:up, left alone' };
      } else {
        const res = name === 'kafka' ? await downKafka(p) : name === 'redis' ? await downRedis(p) : await downPostgres(p);
        r = { name, ...res, seconds: elapsed(t0) };
      }
    } catch (e) {
      r = { name, status: 'failed', seconds: elapsed(t0), detail: e instanceof Error ? e.message : String(e) };
    }
    log(formatResult(r));
    return r;
  };
  const results = await Promise.all(services.map(one));
  if (results.some((r) => r.status === 'failed')) throw new StackError('stack:down failed', results);
  return results;
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

function isEntry(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  if (import.meta.url === pathToFileURL(argv1).href) return true;
  try {
    return fs.realpathSync(fileURLToPath(import.meta.url)) === fs.realpathSync(argv1);
  } catch {
    return false;
  }
}

/** `up --cluster` / `down --cluster` */
export async function clusterStackUp(opts: Pick<StackOptions, 'root' | 'env' | 'log'> = {}) {
  return clusterUp(paths(opts.root ?? defaultRoot()), opts.env ?? process.env, opts.log ?? (() => undefined));
}

export async function clusterStackDown(opts: Pick<StackOptions, 'root' | 'log'> = {}) {
  return clusterDown(paths(opts.root ?? defaultRoot()), opts.log ?? (() => undefined));
}

async function main(): Promise<void> {
  const cmd = process.argv[2];
  const cluster = process.argv.includes('--cluster');
  const log = (l: string) => console.log(l);
  const t0 = performance.now();
  try {
    if (cluster && cmd === 'up') {
      const r = await clusterStackUp({ log });
      console.log(`kafka cluster  ${r.kafka}  ${r.env.KAFKA_BROKERS}`);
      console.log(`redis cluster  ${r.redis}  ${r.env.REDIS_CLUSTER_NODES}`);
      console.log(`cluster up in ${elapsed(t0).toFixed(1)}s; run firstcome on it with:`);
      console.log(
        Object.entries(r.env)
          .map(([k, v]) => `export ${k}=${v}`)
          .join('\n'),
      );
    } else if (cluster && cmd === 'down') {
      await clusterStackDown({ log });
    } else if (cmd === 'up') {
      await stackUp({ log });
      console.log(`stack up in ${elapsed(t0).toFixed(1)}s`);
    } else if (cmd === 'down') {
      await stackDown({ log });
    } else {
      console.error('usage: tsx scripts/stack.ts up|down [--cluster]');
      process.exitCode = 2;
      return;
    }
  } catch (e) {
    if (!(e instanceof StackError)) console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  }
}

if (isEntry()) {
  await main();
}
