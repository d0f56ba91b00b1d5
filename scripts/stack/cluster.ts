/**
 * `npm run stack:up -- --cluster`: what firstcome runs on beyond one machine, on this one. A
 * 3-node KRaft Kafka (each node broker and controller; internal topics with 3 replicas and 2 in
 * sync, so any one node may die) and a Redis Cluster of 3 primaries with a replica each. Both from
 * the same binaries as the single-node stack; their files live in .stack/cluster/.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { clusterIdAt, ensureKafkaLibs, formatLogDir, javaBin } from './kafkaLibs.js';
import { kafkaServerProperties } from './kafkaProperties.js';
import { lock } from './lock.js';
import type { Paths } from './paths.js';
import { tcpOpen, withTimeout } from './probe.js';
import { alive, ours, readPid, spawnDetached, stopPid, tail, which } from './process.js';
import { ServiceError } from './results.js';

const HOST = '127.0.0.1';
export const CLUSTER_KAFKA_PORTS = [19092, 19093, 19094] as const;
/** KRaft controller listeners of the three nodes */
const CONTROLLER_PORTS = [19192, 19193, 19194] as const;
export const CLUSTER_REDIS_PORTS = [17000, 17001, 17002, 17003, 17004, 17005] as const;
const KAFKA_MAIN = 'kafka.Kafka';
const REDIS_MAIN = 'redis-server';

/** The environment an app uses to run on the cluster. */
export function clusterEnv(): Record<string, string> {
  return {
    KAFKA_BROKERS: CLUSTER_KAFKA_PORTS.map((p) => `${HOST}:${p}`).join(','),
    // said, not counted: a node briefly fenced while the cluster starts must not cost a topic a replica
    KAFKA_REPLICATION_FACTOR: '3',
    REDIS_CLUSTER_NODES: CLUSTER_REDIS_PORTS.map((p) => `${HOST}:${p}`).join(','),
  };
}

interface ClusterPaths {
  dir: string;
  lock: string;
  kafkaNode: (i: number) => { dir: string; data: string; props: string; log: string; pid: string };
  clusterId: string;
  redisNode: (port: number) => { dir: string; log: string; pid: string };
}

function clusterPaths(p: Paths): ClusterPaths {
  const dir = path.join(p.stack, 'cluster');
  return {
    dir,
    lock: path.join(dir, 'cluster.lock'),
    clusterId: path.join(dir, 'kafka-cluster-id'),
    kafkaNode: (i) => {
      const d = path.join(dir, `kafka-${i + 1}`);
      return {
        dir: d,
        data: path.join(d, 'data'),
        props: path.join(d, 'server.properties'),
        log: path.join(d, 'kafka.log'),
        pid: path.join(d, 'kafka.pid'),
      };
    },
    redisNode: (port) => {
      const d = path.join(dir, `redis-${port}`);
      return { dir: d, log: path.join(d, 'redis.log'), pid: path.join(d, 'redis.pid') };
    },
  };
}

export interface ClusterResult {
  kafka: 'started' | 'reused';
  redis: 'started' | 'reused';
  env: Record<string, string>;
}

export async function clusterUp(p: Paths, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<ClusterResult> {
  const c = clusterPaths(p);
  fs.mkdirSync(c.dir, { recursive: true });
  const release = await lock(c.lock);
  try {
    const [kafka, redis] = await Promise.all([upKafkaCluster(p, c, env, log), upRedisCluster(c, log)]);
    return { kafka, redis, env: clusterEnv() };
  } finally {
    release();
  }
}

export async function clusterDown(p: Paths, log: (l: string) => void): Promise<void> {
  const c = clusterPaths(p);
  const stops: Promise<void>[] = [];
  CLUSTER_KAFKA_PORTS.forEach((_, i) => stops.push(stopNode(c.kafkaNode(i).pid, KAFKA_MAIN, `kafka node ${i + 1}`, log)));
  for (const port of CLUSTER_REDIS_PORTS) stops.push(stopNode(c.redisNode(port).pid, REDIS_MAIN, `redis ${port}`, log));
  await Promise.all(stops);
}

async function stopNode(pidFile: string, marker: string, name: string, log: (l: string) => void): Promise<void> {
  const pid = readPid(pidFile);
  if (pid === undefined) return;
  const r = await stopPid(pid, marker);
  fs.rmSync(pidFile, { force: true });
  log(`${name.padEnd(14)} ${r}`);
}

// --- Kafka -------------------------------------------------------------------------------------

async function brokersAnswering(timeoutMs = 2500): Promise<number> {
  const kafka = new Kafka({
    clientId: 'firstcome-stack',
    brokers: clusterEnv().KAFKA_BROKERS!.split(','),
    connectionTimeout: 1000,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    return await withTimeout(
      (async () => {
        await admin.connect();
        return (await admin.describeCluster()).brokers.length;
      })(),
      timeoutMs,
      'kafka cluster describeCluster',
    );
  } catch {
    return 0;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function upKafkaCluster(p: Paths, c: ClusterPaths, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<'started' | 'reused'> {
  if ((await brokersAnswering()) === CLUSTER_KAFKA_PORTS.length) return 'reused';
  const java = javaBin(env);
  await ensureKafkaLibs(p, log);
  const cp = `${p.kafkaLibs}${path.sep}*`;
  const clusterId = clusterIdAt(c.clusterId);
  const voters = CONTROLLER_PORTS.map((port, i) => `${i + 1}@${HOST}:${port}`).join(',');
  const exits: Promise<unknown>[] = [];
  for (const [i, port] of CLUSTER_KAFKA_PORTS.entries()) {
    const n = c.kafkaNode(i);
    const prev = readPid(n.pid);
    if (prev !== undefined && ours(prev, KAFKA_MAIN)) continue;
    if (await tcpOpen(HOST, port))
      throw new ServiceError(`something else listens on ${HOST}:${port}: free it for the cluster's Kafka node ${i + 1}`);
    fs.mkdirSync(n.data, { recursive: true });
    fs.writeFileSync(
      n.props,
      kafkaServerProperties({
        host: HOST,
        port,
        controllerPort: CONTROLLER_PORTS[i]!,
        dataDir: n.data,
        cluster: { nodeId: i + 1, voters, replicas: 3, minInsync: 2 },
      }),
    );
    formatLogDir(p, java, n.props, n.data, clusterId, `Kafka node ${i + 1}`);
    // three JVMs share two cores with everything else: a smaller heap each than the single broker's
    const { child, exited } = spawnDetached(
      java,
      [
        '-Xmx384m',
        '-Xms128m',
        '-XX:+UseG1GC',
        '-XX:+ExitOnOutOfMemoryError',
        '-Djava.awt.headless=true',
        `-Dlog4j.configuration=file:${p.kafkaLog4j}`,
        `-Dkafka.logs.dir=${n.dir}`,
        '-cp',
        cp,
        KAFKA_MAIN,
        n.props,
      ],
      n.log,
      p.root,
    );
    if (child.pid === undefined) throw new ServiceError(`could not start ${java}`);
    fs.writeFileSync(n.pid, `${child.pid}\n`);
    exits.push(exited);
  }
  let died = false;
  for (const e of exits) void e.then(() => (died = true));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && !died) {
    if ((await brokersAnswering()) === CLUSTER_KAFKA_PORTS.length) return 'started';
    await sleep(500);
  }
  const logs = CLUSTER_KAFKA_PORTS.map((_, i) => `node ${i + 1}:\n${tail(c.kafkaNode(i).log, 15)}`).join('\n');
  throw new ServiceError(`the Kafka cluster did not answer with 3 brokers${died ? ' (a node exited)' : ' within 120 s'}:\n${logs}`);
}

// --- Redis Cluster -----------------------------------------------------------------------------

function redisCli(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(which('redis-cli') ?? 'redis-cli', args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** Asked of every node in turn: the first may be the one a test killed. */
const clusterOk = () =>
  CLUSTER_REDIS_PORTS.some((port) => redisCli(['-h', HOST, '-p', String(port), 'cluster', 'info']).out.includes('cluster_state:ok'));
const clusterNodes = () => {
  for (const port of CLUSTER_REDIS_PORTS) {
    const r = redisCli(['-h', HOST, '-p', String(port), 'cluster', 'nodes']);
    if (r.status === 0 && r.out.includes('myself')) return r.out.trim().split('\n');
  }
  return [];
};

const nodeAlive = (c: ClusterPaths, port: number) => {
  const pid = readPid(c.redisNode(port).pid);
  return pid !== undefined && alive(pid) && ours(pid, REDIS_MAIN);
};

function startRedisNode(c: ClusterPaths, server: string, port: number): void {
  const n = c.redisNode(port);
  const args = [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    path.join(n.dir, 'nodes.conf'),
    '--cluster-node-timeout',
    '3000',
  ];
  args.push('--dir', n.dir, '--save', '', '--appendonly', 'no');
  const { child } = spawnDetached(server, args, n.log, n.dir);
  if (child.pid === undefined) throw new ServiceError(`could not start ${server}`);
  fs.writeFileSync(n.pid, `${child.pid}\n`);
}

/**
 * Nodes of a working cluster that died (a failover test kills primaries) start again from their
 * nodes.conf: each rejoins as a replica of the node that took its slots, so the cluster is whole
 * again, one replica per primary, before anyone kills the next.
 */
async function rejoinRedisNodes(c: ClusterPaths, log: (l: string) => void): Promise<void> {
  const down = CLUSTER_REDIS_PORTS.filter((port) => !nodeAlive(c, port) && fs.existsSync(path.join(c.redisNode(port).dir, 'nodes.conf')));
  if (down.length === 0) return;
  const server = which('redis-server');
  if (!server) throw new ServiceError('redis-server not found on PATH: the Redis Cluster runs from it');
  for (const port of down) startRedisNode(c, server, port);
  const deadline = Date.now() + 30_000;
  while (!redisWhole()) {
    if (Date.now() > deadline) throw new ServiceError(`redis ${down.join(', ')} did not rejoin the cluster as replicas within 30 s`);
    await sleep(250);
  }
  log(`redis cluster  ${down.join(', ')} rejoined as replica${down.length > 1 ? 's' : ''}`);
}

/** Three primaries, each with a replica in sync, every node reachable. */
function redisWhole(): boolean {
  const ok = clusterNodes().filter((l) => / connected/.test(l) && !/fail/.test(l));
  if (ok.filter((l) => l.includes('master')).length !== 3 || ok.filter((l) => l.includes('slave')).length !== 3) return false;
  return CLUSTER_REDIS_PORTS.every((port) => {
    const info = redisCli(['-h', HOST, '-p', String(port), 'info', 'replication']).out;
    return info.includes('role:master') || info.includes('master_link_status:up');
  });
}

async function upRedisCluster(c: ClusterPaths, log: (l: string) => void): Promise<'started' | 'reused'> {
  if (clusterOk()) {
    await rejoinRedisNodes(c, log);
    return 'reused';
  }
  const server = which('redis-server');
  if (!server) throw new ServiceError('redis-server not found on PATH: the Redis Cluster runs from it');
  for (const port of CLUSTER_REDIS_PORTS) {
    if (nodeAlive(c, port)) continue;
    if (await tcpOpen(HOST, port)) throw new ServiceError(`something else listens on ${HOST}:${port}: free it for the Redis Cluster`);
    // a node's cluster config from an earlier run names peers that may be gone: start clean
    const n = c.redisNode(port);
    fs.rmSync(n.dir, { recursive: true, force: true });
    fs.mkdirSync(n.dir, { recursive: true });
    startRedisNode(c, server, port);
  }
  for (const port of CLUSTER_REDIS_PORTS) {
    const deadline = Date.now() + 10_000;
    while (!(await tcpOpen(HOST, port))) {
      if (Date.now() > deadline) throw new ServiceError(`redis ${port} did not listen:\n${tail(c.redisNode(port).log)}`);
      await sleep(100);
    }
  }
  const created = redisCli([
    '--cluster',
    'create',
    ...CLUSTER_REDIS_PORTS.map((port) => `${HOST}:${port}`),
    '--cluster-replicas',
    '1',
    '--cluster-yes',
  ]);
  if (created.status !== 0) throw new ServiceError(`redis-cli --cluster create failed:\n${created.out}`);
  const deadline = Date.now() + 30_000;
  while (!clusterOk()) {
    if (Date.now() > deadline) throw new ServiceError('the Redis Cluster did not reach cluster_state:ok within 30 s');
    await sleep(250);
  }
  log(`redis cluster  ${CLUSTER_REDIS_PORTS.length} nodes, 3 primaries with a replica each`);
  return 'started';
}
