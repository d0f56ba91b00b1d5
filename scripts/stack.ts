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
 * Library use (tests, demo): `await stackUp()` / `await stackDown()`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import pg from 'pg';

// ---------------------------------------------------------------------------------------------
// Types and defaults
// ---------------------------------------------------------------------------------------------

export type ServiceName = 'kafka' | 'redis' | 'postgres';
export type ServiceStatus = 'started' | 'reused' | 'failed';

export interface ServiceResult {
  name: ServiceName;
  status: ServiceStatus;
  /** host:port the service answers on */
  address: string;
  /** wall-clock seconds this service took (probe + start + wait) */
  seconds: number;
  /** pid of the process `up` started (status "started" only) */
  pid?: number;
  /** extra information, e.g. "created database firstcome" or the failure reason */
  detail?: string;
}

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

export interface DownResult {
  name: ServiceName;
  status: 'stopped' | 'untouched' | 'gone' | 'failed';
  pid?: number;
  seconds: number;
  detail?: string;
}

export const DEFAULT_KAFKA_BROKERS = '127.0.0.1:9092';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/firstcome';
/** Keep in step with <kafka.version> in scripts/kafka/pom.xml. */
export const KAFKA_VERSION = '3.9.2';

const ALL_SERVICES: ServiceName[] = ['kafka', 'redis', 'postgres'];
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]', '0.0.0.0']);

export class StackError extends Error {
  constructor(
    message: string,
    readonly results: Array<ServiceResult | DownResult> = [],
  ) {
    super(message);
    this.name = 'StackError';
  }
}

/** A failure with a message meant for the person running the command. */
class ServiceError extends Error {}

interface Paths {
  root: string;
  stack: string;
  cache: string;
  kafkaCache: string;
  kafkaLibs: string;
  kafkaMarker: string;
  kafkaPom: string;
  kafkaLog4j: string;
  kafkaDir: string;
  kafkaData: string;
  kafkaLog: string;
  kafkaProps: string;
  kafkaClusterId: string;
  redisDir: string;
  redisLog: string;
  pgDir: string;
  pgData: string;
  pgLog: string;
  pidFile: (s: ServiceName) => string;
  lockFile: (s: ServiceName) => string;
}

const SCRIPT_DIR = path.dirname(fileURLToPath(import.meta.url));

function defaultRoot(): string {
  return path.resolve(SCRIPT_DIR, '..');
}

function paths(root: string): Paths {
  const stack = path.join(root, '.stack');
  const cache = path.join(root, '.cache');
  const kafkaCache = path.join(cache, 'kafka');
  const kafkaDir = path.join(stack, 'kafka');
  const pgDir = path.join(stack, 'pg');
  return {
    root,
    stack,
    cache,
    kafkaCache,
    kafkaLibs: path.join(kafkaCache, 'libs'),
    kafkaMarker: path.join(kafkaCache, 'libs', '.complete'),
    // the broker's recipe always comes from this script's own folder, whatever `root` is
    kafkaPom: path.join(SCRIPT_DIR, 'kafka', 'pom.xml'),
    kafkaLog4j: path.join(SCRIPT_DIR, 'kafka', 'log4j.properties'),
    kafkaDir,
    kafkaData: path.join(kafkaDir, 'data'),
    kafkaLog: path.join(kafkaDir, 'kafka.log'),
    kafkaProps: path.join(kafkaDir, 'server.properties'),
    kafkaClusterId: path.join(kafkaDir, 'cluster-id'),
    redisDir: path.join(stack, 'redis'),
    redisLog: path.join(stack, 'redis', 'redis.log'),
    pgDir,
    pgData: path.join(pgDir, 'data'),
    pgLog: path.join(pgDir, 'postgres.log'),
    pidFile: (s) => path.join(stack, `${s === 'postgres' ? 'pg' : s}.pid`),
    lockFile: (s) => path.join(stack, `${s}.lock`),
  };
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) / 100) / 10;
}

export function formatResult(r: ServiceResult | DownResult): string {
  const where = 'address' in r ? r.address : r.pid !== undefined ? `pid ${r.pid}` : '-';
  const line = `${r.name.padEnd(10)}${r.status.padEnd(10)}${where.padEnd(17)}${r.seconds.toFixed(1)}s`;
  return r.detail ? `${line}   ${r.detail}` : line;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

function tcpOpen(host: string, port: number, ms = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(ms, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function isLocal(host: string): boolean {
  return LOCAL_HOSTS.has(host);
}

function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a pid, when /proc has it (Linux); undefined elsewhere. */
function cmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
}

/** Is `pid` alive and (where we can tell) still the program we started? */
function ours(pid: number, marker: string): boolean {
  if (!alive(pid)) return false;
  const cmd = cmdline(pid);
  return cmd === undefined || cmd.includes(marker);
}

function tail(file: string, lines = 40): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

function which(cmd: string, extraDirs: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...extraDirs];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Spawn a long-lived process detached from us, output appended to `logFile`. */
function spawnDetached(cmd: string, args: string[], logFile: string, cwd: string) {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', fd, fd] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: -1, signal: null }));
    });
    child.unref();
    return { child, exited };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A per-service lock so two `up`s at once don't both start a server (or both run Maven).
 * Returns a release function. A lock whose holder is dead is taken over.
 */
async function lock(file: string, timeoutMs = 180_000): Promise<() => void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = readPid(file);
      if (holder === undefined || !alive(holder)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new ServiceError(`${file} is held by pid ${holder}`);
      await sleep(250);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Kafka
// ---------------------------------------------------------------------------------------------

function kafkaBrokers(env: NodeJS.ProcessEnv): string[] {
  return (env.KAFKA_BROKERS ?? DEFAULT_KAFKA_BROKERS)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function splitHostPort(hp: string, defaultPort: number): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(hp);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : defaultPort };
  const i = hp.lastIndexOf(':');
  if (i < 0) return { host: hp || '127.0.0.1', port: defaultPort };
  return { host: hp.slice(0, i) || '127.0.0.1', port: Number(hp.slice(i + 1)) || defaultPort };
}

/** Does a Kafka broker at `brokers` answer a metadata request? */
export async function kafkaAnswers(brokers: string[], timeoutMs = 3000): Promise<boolean> {
  const kafka = new Kafka({
    clientId: 'firstcome-stack',
    brokers,
    connectionTimeout: Math.min(1000, timeoutMs),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    const cluster = await withTimeout(
      (async () => {
        await admin.connect();
        return admin.describeCluster();
      })(),
      timeoutMs,
      'kafka describeCluster',
    );
    return cluster.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Kafka's Uuid.randomUuid().toString(): 16 random bytes, base64url without padding, not starting with '-'. */
function kafkaUuid(): string {
  for (;;) {
    const s = randomBytes(16).toString('base64url');
    if (!s.startsWith('-') && s !== 'AAAAAAAAAAAAAAAAAAAAAA' && s !== 'AAAAAAAAAAAAAAAAAAAAAQ') return s;
  }
}

export interface KafkaPropsInput {
  host: string;
  port: number;
  controllerPort: number;
  dataDir: string;
}

/** server.properties for the single-node KRaft broker+controller. */
export function kafkaServerProperties({ host, port, controllerPort, dataDir }: KafkaPropsInput): string {
  const props: Array<[string, string | number] | string> = [
    '# written by scripts/stack.ts on every start; edit the script, not this file',
    '## KRaft, one node that is both broker and controller',
    ['process.roles', 'broker,controller'],
    ['node.id', 1],
    ['controller.quorum.voters', `1@${host}:${controllerPort}`],
    ['listeners', `PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`],
    ['advertised.listeners', `PLAINTEXT://${host}:${port}`],
    ['listener.security.protocol.map', 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT'],
    ['controller.listener.names', 'CONTROLLER'],
    ['inter.broker.listener.name', 'PLAINTEXT'],
    ['log.dirs', dataDir],
    '## one node: every internal topic has one replica',
    ['offsets.topic.replication.factor', 1],
    ['transaction.state.log.replication.factor', 1],
    ['transaction.state.log.min.isr', 1],
    ['default.replication.factor', 1],
    ['min.insync.replicas', 1],
    ['offsets.topic.num.partitions', 10],
    ['transaction.state.log.num.partitions', 10],
    '## behaviour the app relies on',
    ['group.initial.rebalance.delay.ms', 0],
    ['auto.create.topics.enable', 'false'],
    ['num.partitions', 1],
    ['delete.topic.enable', 'true'],
    '# the log is the store of record: never delete by age or size unless a topic says so',
    ['log.retention.ms', -1],
    ['log.retention.bytes', -1],
    '## sized for a small (2-core) machine',
    ['num.network.threads', 2],
    ['num.io.threads', 4],
    ['background.threads', 4],
    ['num.recovery.threads.per.data.dir', 1],
    ['log.cleaner.threads', 1],
    ['log.cleaner.dedupe.buffer.size', 33554432],
    ['socket.send.buffer.bytes', 102400],
    ['socket.receive.buffer.bytes', 102400],
    ['socket.request.max.bytes', 104857600],
    ['log.segment.bytes', 1073741824],
    ['log.retention.check.interval.ms', 300000],
  ];
  return (
    props.map((p) => (typeof p === 'string' ? `\n${p}` : `${p[0]}=${String(p[1])}`)).join('\n').trimStart() + '\n'
  );
}

function pomDigest(p: Paths): string {
  return createHash('sha256').update(fs.readFileSync(p.kafkaPom)).digest('hex');
}

/** Resolve the broker jars into .cache/kafka/libs with Maven, unless a complete copy is there. */
async function ensureKafkaLibs(p: Paths, log: (l: string) => void): Promise<'cached' | 'downloaded'> {
  const digest = pomDigest(p);
  try {
    if (fs.readFileSync(p.kafkaMarker, 'utf8').trim() === digest) return 'cached';
  } catch {
    /* not there yet */
  }
  const mvn = which('mvn');
  if (!mvn) {
    throw new ServiceError(
      'Kafka is not running and Maven is needed to fetch it once: apt-get install maven (and a Java 17 JRE: apt-get install openjdk-17-jre-headless), or run a broker yourself and set KAFKA_BROKERS',
    );
  }
  log(`kafka     resolving Apache Kafka ${KAFKA_VERSION} from Maven Central into ${path.relative(p.root, p.kafkaLibs)} (first run only)…`);
  const tmp = `${p.kafkaLibs}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(p.kafkaCache, { recursive: true });
  const out = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(
      mvn,
      ['-q', '-B', '-f', p.kafkaPom, 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`],
      { cwd: p.root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (e) => resolve({ code: -1, output: String(e) }));
    child.once('close', (code) => resolve({ code, output }));
  });
  const jars = fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((f) => f.endsWith('.jar')) : [];
  if (out.code !== 0 || !jars.some((j) => j.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new ServiceError(
      `Maven could not resolve Kafka (exit ${out.code}):\n${out.output.split('\n').slice(-30).join('\n')}`,
    );
  }
  fs.rmSync(p.kafkaLibs, { recursive: true, force: true });
  fs.renameSync(tmp, p.kafkaLibs);
  fs.writeFileSync(p.kafkaMarker, `${digest}\n`);
  return 'downloaded';
}

function javaBin(env: NodeJS.ProcessEnv): string {
  const fromHome = env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : undefined;
  if (fromHome && fs.existsSync(fromHome)) return fromHome;
  const j = which('java');
  if (!j) {
    throw new ServiceError(
      'Kafka is not running and Java 17+ is needed to run one: apt-get install openjdk-17-jre-headless, or run a broker yourself and set KAFKA_BROKERS',
    );
  }
  return j;
}

async function upKafka(p: Paths, env: NodeJS.ProcessEnv, opts: StackOptions, log: (l: string) => void): Promise<Omit<ServiceResult, 'seconds'>> {
  const brokers = kafkaBrokers(env);
  const first = brokers[0] ?? DEFAULT_KAFKA_BROKERS;
  const { host, port } = splitHostPort(first, 9092);
  const address = `${host}:${port}`;
  if (await kafkaAnswers(brokers, 2500)) return { name: 'kafka', status: 'reused', address };

  const release = await lock(p.lockFile('kafka'));
  try {
    // Someone (another `up`, or a broker we started earlier that is still booting) may have won the race.
    const pidFile = p.pidFile('kafka');
    const prev = readPid(pidFile);
    if (prev !== undefined && ours(prev, 'kafka.Kafka')) {
      if (await waitKafka(brokers, opts.kafkaReadyTimeoutMs ?? 60_000, undefined)) {
        return { name: 'kafka', status: 'reused', address, detail: `pid ${prev}` };
      }
      throw new ServiceError(`kafka pid ${prev} (from an earlier stack:up) runs but does not answer on ${address}; see ${path.relative(p.root, p.kafkaLog)} or run stack:down`);
    }
    if (prev !== undefined) fs.rmSync(pidFile, { force: true });
    if (await kafkaAnswers(brokers, 2500)) return { name: 'kafka', status: 'reused', address };

    if (!isLocal(host)) {
      throw new ServiceError(`KAFKA_BROKERS points at ${address}, which does not answer, and is not this machine: start that broker, or unset KAFKA_BROKERS`);
    }
    if (await tcpOpen(host, port)) {
      throw new ServiceError(`something listens on ${address} but does not answer as a Kafka broker; free the port or set KAFKA_BROKERS`);
    }
    const controllerPort = Number(env.KAFKA_CONTROLLER_PORT ?? port + 1);
    if (await tcpOpen(host, controllerPort)) {
      throw new ServiceError(`the KRaft controller port ${host}:${controllerPort} is taken; free it or set KAFKA_CONTROLLER_PORT`);
    }

    const java = javaBin(env);
    const libs = await ensureKafkaLibs(p, log);
    const cp = `${p.kafkaLibs}${path.sep}*`;

    fs.mkdirSync(p.kafkaData, { recursive: true });
    fs.writeFileSync(p.kafkaProps, kafkaServerProperties({ host, port, controllerPort, dataDir: p.kafkaData }));
    let clusterId: string;
    try {
      clusterId = fs.readFileSync(p.kafkaClusterId, 'utf8').trim();
    } catch {
      clusterId = kafkaUuid();
      fs.writeFileSync(p.kafkaClusterId, `${clusterId}\n`);
    }
    const fresh = !fs.existsSync(path.join(p.kafkaData, 'meta.properties'));
    if (fresh) {
      const fmt = spawnSync(
        java,
        [`-Dlog4j.configuration=file:${p.kafkaLog4j}`, '-Xmx256m', '-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', p.kafkaProps, '--ignore-formatted'],
        { cwd: p.root, encoding: 'utf8' },
      );
      if (fmt.status !== 0) {
        throw new ServiceError(`formatting the KRaft log dir failed (exit ${fmt.status}):\n${(fmt.stdout ?? '') + (fmt.stderr ?? '')}`);
      }
    }

    fs.appendFileSync(p.kafkaLog, `\n===== stack:up ${new Date().toISOString()} Kafka ${KAFKA_VERSION} on ${address} =====\n`);
    const { child, exited } = spawnDetached(
      java,
      [
        '-Xmx512m',
        '-Xms256m',
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-XX:+ExitOnOutOfMemoryError',
        '-Djava.awt.headless=true',
        `-Dlog4j.configuration=file:${p.kafkaLog4j}`,
        `-Dkafka.logs.dir=${p.kafkaDir}`,
        '-cp',
        cp,
        'kafka.Kafka',
        p.kafkaProps,
      ],
      p.kafkaLog,
      p.root,
    );
    const pid = child.pid;
    if (pid === undefined) throw new ServiceError(`could not start ${java}`);
    fs.writeFileSync(pidFile, `${pid}\n`);
    const timeout = opts.kafkaReadyTimeoutMs ?? (fresh ? 90_000 : 60_000);
    const ok = await waitKafka(brokers, timeout, exited);
    if (!ok) {
      const died = !alive(pid);
      if (!died) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      fs.rmSync(pidFile, { force: true });
      throw new ServiceError(
        `Kafka ${died ? 'exited' : `did not answer within ${Math.round(timeout / 1000)} s`}; last lines of ${path.relative(p.root, p.kafkaLog)}:\n${tail(p.kafkaLog)}`,
      );
    }
    const warm = await warmKafka(brokers);
    return {
      name: 'kafka',
      status: 'started',
      address,
      pid,
      detail: `Kafka ${KAFKA_VERSION}${libs === 'downloaded' ? ', fetched with Maven' : ''}${fresh ? ', new log dir' : ''}${warm ? '' : ', coordinators still loading'}`,
    };
  } finally {
    release();
  }
}

/**
 * Touch the group and transaction coordinators once, so the broker creates and loads
 * __consumer_offsets and __transaction_state now rather than on the app's first request
 * (where KafkaJS would log "coordinator is loading" and retry). Best effort.
 */
async function warmKafka(brokers: string[], timeoutMs = 30_000): Promise<boolean> {
  const kafka = new Kafka({ clientId: 'firstcome-stack', brokers, logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 200 } });
  const admin = kafka.admin();
  const producer = kafka.producer({ transactionalId: 'firstcome-stack-warmup', idempotent: true, maxInFlightRequests: 1 });
  try {
    await withTimeout(
      (async () => {
        await admin.connect();
        await admin.describeGroups(['firstcome-stack-warmup']);
        await producer.connect();
      })(),
      timeoutMs,
      'kafka warm-up',
    );
    return true;
  } catch {
    return false;
  } finally {
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

async function waitKafka(brokers: string[], timeoutMs: number, exited: Promise<unknown> | undefined): Promise<boolean> {
  let dead = false;
  void exited?.then(() => (dead = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (dead) return false;
    if (await kafkaAnswers(brokers, 2000)) return true;
    await sleep(400);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

type Probe = { ok: true } | { ok: false; down: boolean; error: string };

async function redisProbe(url: string, timeoutMs = 1500): Promise<Probe> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    reconnectOnError: () => false,
  });
  r.on('error', () => undefined);
  try {
    await withTimeout(r.connect(), timeoutMs + 500, 'redis connect');
    const pong = await withTimeout(r.ping(), timeoutMs, 'redis PING');
    return pong === 'PONG' ? { ok: true } : { ok: false, down: false, error: `PING answered ${pong}` };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const down = ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(err.code ?? '') || /no answer|Connection is closed|connect ETIMEDOUT/i.test(err.message);
    return { ok: false, down, error: err.message };
  } finally {
    r.disconnect();
  }
}

async function upRedis(p: Paths, env: NodeJS.ProcessEnv): Promise<Omit<ServiceResult, 'seconds'>> {
  const url = env.REDIS_URL ?? DEFAULT_REDIS_URL;
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(u.port || 6379);
  const address = `${host}:${port}`;
  const first = await redisProbe(url);
  if (first.ok) return { name: 'redis', status: 'reused', address };
  if (!first.down) throw new ServiceError(`Redis at ${address} answers but not as expected: ${first.error}`);

  const release = await lock(p.lockFile('redis'));
  try {
    const pidFile = p.pidFile('redis');
    const prev = readPid(pidFile);
    if (prev !== undefined && !ours(prev, 'redis-server')) fs.rmSync(pidFile, { force: true });
    if ((await redisProbe(url)).ok) return { name: 'redis', status: 'reused', address };
    if (!isLocal(host)) throw new ServiceError(`REDIS_URL points at ${address}, which does not answer, and is not this machine`);
    if (u.protocol === 'unix:') throw new ServiceError(`REDIS_URL is a unix socket that does not answer: ${url}`);
    const bin = which('redis-server');
    if (!bin) {
      throw new ServiceError(`Redis does not answer on ${address} and redis-server is not installed: apt-get install redis-server (or set REDIS_URL)`);
    }
    if (await tcpOpen(host, port)) throw new ServiceError(`something listens on ${address} but does not answer Redis PING`);
    const args = ['--port', String(port), '--bind', host === 'localhost' ? '127.0.0.1' : host, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', p.redisDir];
    if (u.password) args.push('--requirepass', decodeURIComponent(u.password));
    fs.mkdirSync(p.redisDir, { recursive: true });
    const { child, exited } = spawnDetached(bin, args, p.redisLog, p.redisDir);
    const pid = child.pid;
    if (pid === undefined) throw new ServiceError(`could not start ${bin}`);
    fs.writeFileSync(pidFile, `${pid}\n`);
    let dead = false;
    void exited.then(() => (dead = true));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !dead) {
      if ((await redisProbe(url, 500)).ok) return { name: 'redis', status: 'started', address, pid };
      await sleep(100);
    }
    fs.rmSync(pidFile, { force: true });
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    throw new ServiceError(`redis-server did not answer on ${address}; last lines of ${path.relative(p.root, p.redisLog)}:\n${tail(p.redisLog)}`);
  } finally {
    release();
  }
}

// ---------------------------------------------------------------------------------------------
// Postgres
// ---------------------------------------------------------------------------------------------

interface PgTarget {
  url: string;
  adminUrl: string;
  host: string;
  port: number;
  user: string;
  database: string;
}

function pgTarget(env: NodeJS.ProcessEnv): PgTarget {
  const url = env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres';
  const admin = new URL(url);
  admin.pathname = '/postgres';
  return {
    url,
    adminUrl: admin.toString(),
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username) || 'postgres',
    database,
  };
}

const PG_DOWN_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', '57P03' /* cannot_connect_now: starting up */]);

async function pgProbe(t: PgTarget, timeoutMs = 2000): Promise<Probe> {
  const c = new pg.Client({ connectionString: t.adminUrl, connectionTimeoutMillis: timeoutMs });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return { ok: true };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const down = PG_DOWN_CODES.has(err.code ?? '') || /timeout|terminated unexpectedly/i.test(err.message);
    return { ok: false, down, error: err.message };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Create the target database when missing. Returns true when it created it. */
async function ensureDatabase(t: PgTarget): Promise<boolean> {
  if (t.database === 'postgres') return false;
  const c = new pg.Client({ connectionString: t.adminUrl, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const found = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [t.database]);
    if (found.rowCount) return false;
    try {
      await c.query(`CREATE DATABASE ${pg.escapeIdentifier(t.database)}`);
      return true;
    } catch (e) {
      // another process created it at the same moment
      if (['42P04', '23505'].includes((e as { code?: string }).code ?? '')) return false;
      throw e;
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}

function pgBinDirs(): string[] {
  try {
    return fs
      .readdirSync('/usr/lib/postgresql')
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => path.join('/usr/lib/postgresql', v, 'bin'));
  } catch {
    return [];
  }
}

function pgTools(): { initdb: string; pgCtl: string } | undefined {
  const initdb = which('initdb');
  const pgCtl = which('pg_ctl');
  if (initdb && pgCtl) return { initdb, pgCtl };
  for (const dir of pgBinDirs()) {
    const i = path.join(dir, 'initdb');
    const c = path.join(dir, 'pg_ctl');
    if (fs.existsSync(i) && fs.existsSync(c)) return { initdb: i, pgCtl: c };
  }
  return undefined;
}

/** initdb and postgres refuse to run as root: when we are root, run them as the `postgres` OS user. */
function pgRunAs(): { prefix: string[]; uid?: number; gid?: number } {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { prefix: [] };
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  const runuser = which('runuser', ['/usr/sbin', '/sbin']);
  if (id.status !== 0 || !runuser) {
    throw new ServiceError('running as root: initdb/postgres need a non-root OS user named "postgres" (and runuser) to own the private cluster');
  }
  return { prefix: [runuser, '-u', 'postgres', '--'], uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function run(argv: string[], cwd: string): { status: number | null; output: string } {
  const [cmd, ...args] = argv;
  const r = spawnSync(cmd!, args, { cwd, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

async function upPostgres(p: Paths, env: NodeJS.ProcessEnv): Promise<Omit<ServiceResult, 'seconds'>> {
  const t = pgTarget(env);
  const address = `${t.host}:${t.port}`;
  const first = await pgProbe(t);
  if (first.ok) {
    const created = await ensureDatabase(t);
    return { name: 'postgres', status: 'reused', address, detail: created ? `created database ${t.database}` : undefined };
  }
  if (!first.down) throw new ServiceError(`Postgres at ${address} answers but refuses us: ${first.error}`);

  const release = await lock(p.lockFile('postgres'));
  try {
    const again = await pgProbe(t);
    if (again.ok) {
      const created = await ensureDatabase(t);
      return { name: 'postgres', status: 'reused', address, detail: created ? `created database ${t.database}` : undefined };
    }
    if (!isLocal(t.host)) throw new ServiceError(`DATABASE_URL points at ${address}, which does not answer, and is not this machine`);
    const tools = pgTools();
    if (!tools) {
      throw new ServiceError(`Postgres does not answer on ${address} and initdb/pg_ctl are not installed: apt-get install postgresql (or set DATABASE_URL)`);
    }
    if (await tcpOpen(t.host, t.port)) throw new ServiceError(`something listens on ${address} but does not answer as Postgres`);
    const as = pgRunAs();
    fs.mkdirSync(p.pgDir, { recursive: true });
    if (as.uid !== undefined) fs.chownSync(p.pgDir, as.uid, as.gid ?? as.uid);
    let detail = '';
    if (!fs.existsSync(path.join(p.pgData, 'PG_VERSION'))) {
      const init = run([...as.prefix, tools.initdb, '-D', p.pgData, '-U', t.user, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], p.pgDir);
      if (init.status !== 0) throw new ServiceError(`initdb failed:\n${init.output}`);
      detail = 'new cluster in .stack/pg';
    }
    const listen = t.host === 'localhost' ? '127.0.0.1' : t.host;
    const start = run(
      [...as.prefix, tools.pgCtl, 'start', '-D', p.pgData, '-l', p.pgLog, '-w', '-t', '60', '-o', `-p ${t.port} -c listen_addresses=${listen} -k '${p.pgDir}'`],
      p.pgDir,
    );
    if (start.status !== 0) throw new ServiceError(`pg_ctl start failed:\n${start.output}\n${tail(p.pgLog)}`);
    const pid = readPid(path.join(p.pgData, 'postmaster.pid'));
    fs.writeFileSync(p.pidFile('postgres'), `${pid ?? ''}\n`);
    const deadline = Date.now() + 20_000;
    while (!(await pgProbe(t, 1000)).ok) {
      if (Date.now() > deadline) throw new ServiceError(`Postgres started but does not answer on ${address}:\n${tail(p.pgLog)}`);
      await sleep(200);
    }
    const created = await ensureDatabase(t);
    if (created) detail = [detail, `created database ${t.database}`].filter(Boolean).join(', ');
    return { name: 'postgres', status: 'started', address, pid, detail: detail || undefined };
  } finally {
    release();
  }
}

// ---------------------------------------------------------------------------------------------
// up / down
// ---------------------------------------------------------------------------------------------

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
        name === 'kafka' ? await upKafka(p, env, opts, log) : name === 'redis' ? await upRedis(p, env) : await upPostgres(p, env);
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

async function stopPid(pid: number, marker: string, graceMs = 20_000): Promise<'stopped' | 'gone'> {
  if (!ours(pid, marker)) return 'gone';
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return 'stopped';
    await sleep(200);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* just went */
  }
  const hard = Date.now() + 5000;
  while (alive(pid) && Date.now() < hard) await sleep(100);
  return 'stopped';
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
      } else if (name === 'postgres') {
        const pid = readPid(pidFile) ?? readPid(path.join(p.pgData, 'postmaster.pid'));
        const tools = pgTools();
        let status: DownResult['status'] = 'gone';
        if (pid !== undefined && alive(pid)) {
          if (!tools) throw new ServiceError('pg_ctl not found; stop the cluster in .stack/pg/data yourself');
          const res = run([...pgRunAs().prefix, tools.pgCtl, 'stop', '-D', p.pgData, '-m', 'fast', '-w', '-t', '20'], p.pgDir);
          if (res.status !== 0 && alive(pid)) {
            await stopPid(pid, 'postgres', 5000);
          }
          status = 'stopped';
        }
        fs.rmSync(pidFile, { force: true });
        r = { name, status, pid, seconds: elapsed(t0) };
      } else {
        const pid = readPid(pidFile);
        const status = pid === undefined ? 'gone' : await stopPid(pid, name === 'kafka' ? 'kafka.Kafka' : 'redis-server');
        fs.rmSync(pidFile, { force: true });
        r = { name, status, pid, seconds: elapsed(t0) };
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

async function main(): Promise<void> {
  const cmd = process.argv[2];
  const log = (l: string) => console.log(l);
  const t0 = performance.now();
  try {
    if (cmd === 'up') {
      await stackUp({ log });
      console.log(`stack up in ${elapsed(t0).toFixed(1)}s`);
    } else if (cmd === 'down') {
      await stackDown({ log });
    } else {
      console.error('usage: tsx scripts/stack.ts up|down');
      process.exitCode = 2;
      return;
    }
  } catch (e) {
    if (!(e instanceof StackError)) console.error(e);
    process.exitCode = 1;
  }
}

if (isEntry()) {
  await main();
}
