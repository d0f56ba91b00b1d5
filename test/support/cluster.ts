import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import type { Config } from '../../src/config.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { CLUSTER_REDIS_PORTS, clusterStackUp } from '../../scripts/stack.js';
import { Keys } from '../../projections/redis-ordering/keys.js';
import { waitUntil } from './wait.js';

/**
 * Faults on the local cluster stack (`stack:up -- --cluster`): which node holds what, SIGKILL of
 * one node, and the stack made whole again (the killed node back, in sync) before the next fault.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLUSTER_DIR = path.join(ROOT, '.stack', 'cluster');

const redisCli = (port: number, ...args: string[]) =>
  spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });

/** `cluster nodes` as the first node that answers sees it. */
function clusterNodes(): string[] {
  for (const port of CLUSTER_REDIS_PORTS) {
    const r = redisCli(port, 'cluster', 'nodes');
    if (r.status === 0 && r.stdout.includes('myself')) return r.stdout.trim().split('\n');
  }
  throw new Error('no Redis Cluster node answers');
}

/** The port of the primary that serves a campaign's keys now. */
export function redisPrimaryOf(campaignId: string, prefix: string): number {
  const key = new Keys(prefix).meta(campaignId);
  const slot = Number(
    redisCli(
      CLUSTER_REDIS_PORTS.find((p) => redisCli(p, 'ping').stdout.trim() === 'PONG')!,
      'cluster',
      'keyslot',
      key,
    ).stdout.trim(),
  );
  for (const line of clusterNodes()) {
    const [, addr, flags, , , , , , ...ranges] = line.split(' ');
    if (!flags!.includes('master') || flags!.includes('fail')) continue;
    for (const r of ranges) {
      const [from, to = from] = r.split('-').map(Number);
      if (slot >= from! && slot <= to!) return Number(addr!.split('@')[0]!.split(':')[1]);
    }
  }
  throw new Error(`no primary serves slot ${slot}`);
}

/** The broker (node id) that leads a campaign's partition now. */
export async function kafkaLeaderOf(config: Config, campaignId: string): Promise<number> {
  const admin = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const partition = partitionFor(campaignId, config.EVENT_PARTITIONS);
    const meta = await admin.fetchTopicMetadata({ topics: [config.topics.events] });
    return meta.topics[0]!.partitions.find((p) => p.partitionId === partition)!.leader;
  } finally {
    await admin.disconnect();
  }
}

export function killKafkaNode(nodeId: number): void {
  process.kill(Number(readFileSync(path.join(CLUSTER_DIR, `kafka-${nodeId}`, 'kafka.pid'), 'utf8')), 'SIGKILL');
}

export function killRedisNode(port: number): void {
  process.kill(Number(readFileSync(path.join(CLUSTER_DIR, `redis-${port}`, 'redis.pid'), 'utf8')), 'SIGKILL');
}

/**
 * The killed nodes back (stack:up restarts them: a broker from its log dir, a Redis node from its
 * nodes.conf, as a replica), then every partition of the suite's topics and of the broker's own
 * topics with all three replicas in sync again, so the next fault may take any one node.
 */
export async function clusterWhole(config: Config): Promise<void> {
  await clusterStackUp();
  const admin = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const topics = [config.topics.events, '__consumer_offsets', '__transaction_state'];
    await waitUntil(
      async () => {
        const meta = await admin.fetchTopicMetadata({ topics }).catch(() => null);
        return (
          meta?.topics.flatMap((t) => t.partitions.filter((p) => p.isr.length < 3).map((p) => `${t.name}-${p.partitionId}`)) ?? ['metadata']
        );
      },
      (short) => short.length === 0,
      { what: 'every replica back in sync', timeoutMs: 90_000, everyMs: 500 },
    );
  } finally {
    await admin.disconnect();
  }
}
