import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { clusterStackDown, clusterStackUp } from '../../scripts/stack.js';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/**
 * Beyond one broker: `stack:up -- --cluster` (three Kafka nodes, a Redis Cluster), and a drop that
 * loses the leader of its partition mid-burst. The cluster is stopped at the end only if this file
 * started it.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let cluster: Awaited<ReturnType<typeof clusterStackUp>>;

beforeAll(async () => {
  cluster = await clusterStackUp();
}, 180_000);

afterAll(async () => {
  if (cluster?.kafka === 'started' || cluster?.redis === 'started') await clusterStackDown();
}, 120_000);

describe('the local cluster stack', () => {
  it('prints the environment that points firstcome at three brokers and six Redis nodes', () => {
    expect(cluster.env.KAFKA_BROKERS).toBe('127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094');
    expect(cluster.env.REDIS_CLUSTER_NODES!.split(',')).toHaveLength(6);
  });

  it('runs three brokers, and the events topic gets three replicas with two in sync', async () => {
    const config = loadConfig({ ...process.env, ...cluster.env, TOPIC_PREFIX: `t.cluster-${Date.now().toString(36)}`, EVENT_PARTITIONS: '3' });
    const admin = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      // a node may be fenced for a moment while three JVMs start on two busy cores: it rejoins
      const cluster3 = await waitUntil(() => admin.describeCluster(), (c) => c.brokers.length === 3, { what: 'three brokers registered', timeoutMs: 60_000 });
      expect(cluster3.brokers.map((b) => b.port).sort()).toEqual([19092, 19093, 19094]);
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

describe('I4 on three brokers: the leader of the drop’s partition killed mid-burst', () => {
  let iso: Isolated;
  let writer: AppProcess;
  let api: AppProcess;

  beforeAll(async () => {
    iso = await isolated('cluster', { KAFKA_BROKERS: cluster.env.KAFKA_BROKERS!, KAFKA_REPLICATION_FACTOR: cluster.env.KAFKA_REPLICATION_FACTOR!, ENTER_WAIT_MS: '1000' });
    writer = await spawnApp(iso, 'decider');
    api = await spawnApp(iso, 'api');
  }, 180_000);

  afterAll(async () => {
    await Promise.all([writer?.kill(), api?.kill()]);
    await iso?.cleanup().catch(() => undefined);
    // the killed node comes back, so the cluster is whole for whoever uses it next
    await clusterStackUp();
  }, 180_000);

  it('loses nothing acknowledged, and the two brokers left finish the drop', async () => {
    const C = 'cluster-drop';
    const STOCK = 150;
    const admin = await token('boss', 'admin');
    const created = await gql(api.port, admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
      i: { id: C, title: C, reward: 'Cake', stock: STOCK, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
    });
    expect(created.errors).toBeUndefined();

    const kafkaAdmin = new Kafka({ brokers: iso.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await kafkaAdmin.connect();
    const partition = partitionFor(C, iso.config.EVENT_PARTITIONS);
    const leader = (await kafkaAdmin.fetchTopicMetadata({ topics: [iso.config.topics.events] })).topics[0]!.partitions.find((p) => p.partitionId === partition)!.leader;
    await kafkaAdmin.disconnect();

    const tokens = await Promise.all(Array.from({ length: 240 }, (_, i) => token(`c${i}`)));
    const accepted = new Map<number, string>();
    const codes: Record<string, number> = {};
    let done = 0;
    await pool(tokens, 16, async (t, i) => {
      // a caller told to retry does, as a client would
      for (let attempt = 0; attempt < 20; attempt++) {
        const r = await gql(api.port, t, `mutation { enter(campaignId: "${C}") { entry { ticket } rejection } }`).catch(() => null);
        const ticket = r?.data?.enter?.entry?.ticket;
        if (ticket) accepted.set(i, ticket);
        const code = ticket ? 'entry' : (r?.data?.enter?.rejection ?? r?.errors?.[0]?.extensions?.code ?? 'no answer');
        codes[code] = (codes[code] ?? 0) + 1;
        if (code !== 'UNAVAILABLE') break;
        await new Promise((res) => setTimeout(res, 250));
      }
      if (++done === 60) {
        const pid = Number(readFileSync(path.join(ROOT, '.stack', 'cluster', `kafka-${leader}`, 'kafka.pid'), 'utf8'));
        process.kill(pid, 'SIGKILL');
      }
    });
    console.log(`three brokers, leader ${leader} of partition ${partition} killed after 60 calls: ${JSON.stringify(codes)}`);
    // only an entry, SOLD_OUT or a retryable UNAVAILABLE is ever answered
    expect(Object.keys(codes).filter((k) => !['entry', 'SOLD_OUT', 'UNAVAILABLE'].includes(k))).toEqual([]);
    expect(accepted.size).toBeGreaterThanOrEqual(STOCK);

    const audit = await waitUntil(() => auditFromLog(iso.config, C), (a) => a.winners >= STOCK && a.gifticons >= STOCK, { what: 'every unit won on the two brokers left', timeoutMs: 90_000 });
    expect(audit.problems).toEqual([]);
    expect(audit.winners).toBe(STOCK);
    for (const [user, ticket] of accepted) expect(audit.state.places.get(`c${user}`)?.ticket, `user c${user}`).toBe(ticket);
  });
});
