import { spawnSync } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ensureTopics } from '../../src/infra/kafka/eventLog.js';
import { clusterStackDown, clusterStackUp } from '../../scripts/stack.js';

/**
 * `stack:up -- --cluster`: three Kafka nodes and a Redis Cluster on this machine. Stops at the end
 * only what it started (a cluster someone already runs is left as it was).
 */
let started: Awaited<ReturnType<typeof clusterStackUp>>;

beforeAll(async () => {
  started = await clusterStackUp();
}, 180_000);

afterAll(async () => {
  if (started?.kafka === 'started' || started?.redis === 'started') await clusterStackDown();
}, 120_000);

describe('the local cluster stack', () => {
  it('prints the environment that points firstcome at three brokers and six Redis nodes', () => {
    expect(started.env.KAFKA_BROKERS).toBe('127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094');
    expect(started.env.REDIS_CLUSTER_NODES!.split(',')).toHaveLength(6);
  });

  it('runs three brokers, and the events topic gets three replicas with two in sync', async () => {
    const config = loadConfig({ ...process.env, KAFKA_BROKERS: started.env.KAFKA_BROKERS, TOPIC_PREFIX: `t.cluster-${Date.now().toString(36)}`, EVENT_PARTITIONS: '3' });
    const admin = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      expect((await admin.describeCluster()).brokers.map((b) => b.port).sort()).toEqual([19092, 19093, 19094]);
      await ensureTopics(admin, config);
      const meta = await admin.fetchTopicMetadata({ topics: [config.topics.events] });
      expect(meta.topics[0]!.partitions.map((p) => p.replicas.length)).toEqual([3, 3, 3]);
      const [described] = (await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: config.topics.events }] })).resources;
      expect(described!.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue).toBe('2');
      await admin.deleteTopics({ topics: [config.topics.events, config.topics.parked] });
    } finally {
      await admin.disconnect();
    }
  });

  it('runs a Redis Cluster of three primaries, each with a replica, covering every slot', () => {
    const nodes = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', '17000', 'cluster', 'nodes'], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(nodes.filter((l) => l.includes('master'))).toHaveLength(3);
    expect(nodes.filter((l) => l.includes('slave'))).toHaveLength(3);
    const info = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', '17000', 'cluster', 'info'], { encoding: 'utf8' }).stdout;
    expect(info).toContain('cluster_state:ok');
    expect(info).toContain('cluster_slots_assigned:16384');
  });
});
