import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import { kafkaServerProperties, stackUp, type ServiceName } from '../../scripts/stack.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('stack:up', () => {
  // Integration tests run after `npm run stack:up`, so every service already answers.
  it('reuses Kafka, Redis and Postgres when they already answer, within seconds', async () => {
    const t0 = performance.now();
    const results = await stackUp();
    const seconds = (performance.now() - t0) / 1000;

    const byName = new Map(results.map((r) => [r.name, r]));
    for (const name of ['kafka', 'redis', 'postgres'] satisfies ServiceName[]) {
      const r = byName.get(name);
      expect(r, `${name} missing from results`).toBeDefined();
      expect(r?.status, `${name}: ${r?.detail ?? ''} (run npm run stack:up before the integration tests)`).toBe('reused');
      expect(r?.address).toMatch(/^[^:]+:\d+$/);
      expect(r?.pid).toBeUndefined();
    }
    expect(results).toHaveLength(3);
    expect(seconds).toBeLessThan(5);
  });
});

describe('broker settings', () => {
  it('are a single-node KRaft broker with replication factor 1 and no auto-created topics', () => {
    const text = kafkaServerProperties({ host: '127.0.0.1', port: 9092, controllerPort: 9093, dataDir: '/tmp/x' });
    const props = Object.fromEntries(
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(props).toMatchObject({
      'process.roles': 'broker,controller',
      'node.id': '1',
      'controller.quorum.voters': '1@127.0.0.1:9093',
      listeners: 'PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093',
      'offsets.topic.replication.factor': '1',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'group.initial.rebalance.delay.ms': '0',
      'auto.create.topics.enable': 'false',
      'num.partitions': '1',
      'log.dirs': '/tmp/x',
    });
  });
});

describe('docker-compose.yml', () => {
  const text = readFileSync(`${root}docker-compose.yml`, 'utf8');

  // top-level `services:` block, its keys indented by exactly two spaces
  const block = /^services:\n((?:(?: {2,}.*|\s*#.*|)\n)*)/m.exec(text)?.[1] ?? '';
  const services = [...block.matchAll(/^ {2}([A-Za-z0-9_-]+):.*$/gm)].map((m) => m[1]!);
  /** one service's lines, up to the next service */
  const serviceText = (name: string) => `\n${block}`.slice(`\n${block}`.indexOf(`\n  ${name}:`) + 1).split(/\n(?= {2}[A-Za-z0-9_-]+:)/)[0]!;
  const clusterNodes = [
    'kafka-1',
    'kafka-2',
    'kafka-3',
    ...[17000, 17001, 17002, 17003, 17004, 17005].map((p) => `redis-${p}`),
    'redis-cluster-init',
  ];

  const deployProcesses = ['api-1', 'api-2', 'api-3', 'writer-1', 'writer-2', 'projector-1', 'projector-2', 'worker', 'balancer'];

  it('names the services kafka, redis, postgres and eventstore, the cluster profile’s nodes and the deploy profile’s processes', () => {
    expect(services.sort()).toEqual(['eventstore', 'kafka', 'postgres', 'redis', ...clusterNodes, ...deployProcesses].sort());
    expect(text).not.toMatch(/\t/); // YAML forbids tabs for indentation
  });

  it('keeps the cluster’s nodes behind the profile "cluster", with the topology of stack:up -- --cluster', () => {
    for (const s of ['eventstore', 'kafka', 'postgres', 'redis']) expect(serviceText(s), s).not.toContain('profiles');
    // a node says its profile, or takes it from the first node of its kind (a YAML merge)
    for (const s of clusterNodes) expect(serviceText(s), s).toMatch(/profiles: \["cluster"\]|<<: \*(kafka|redis)-node/);
    // docs/deploy.md's layout: every process behind the profile "deploy", the same one only by its roles
    for (const s of deployProcesses) expect(serviceText(s), s).toMatch(/profiles: \["deploy"\]|<<: \*app/);
    for (const port of [19092, 19093, 19094]) expect(text).toContain(`PLAINTEXT://127.0.0.1:${port}`);
    expect(text).toContain('KAFKA_CONTROLLER_QUORUM_VOTERS: 1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194');
    expect(text).toMatch(/KAFKA_MIN_INSYNC_REPLICAS:\s*2/);
    for (const port of [17000, 17001, 17002, 17003, 17004, 17005]) expect(serviceText(`redis-${port}`)).toContain(`"--port", "${port}"`);
    expect(text).toContain('--cluster-replicas 1');
    expect(text).toContain('"--cluster-node-timeout", "3000"');
  });

  it('matches the contract defaults and the local broker settings', () => {
    expect(text).toMatch(/image:\s*apache\/kafka:3\.9\.\d+/);
    expect(text).toMatch(/image:\s*redis:7/);
    expect(text).toMatch(/image:\s*postgres:16/);
    expect(text).toMatch(/image:\s*eventstore\/eventstore:24\.10/);
    for (const port of ['9092:9092', '6379:6379', '5432:5432', '2113:2113']) expect(text).toContain(port);
    expect(text).toMatch(/POSTGRES_HOST_AUTH_METHOD:\s*trust/);
    expect(text).toMatch(/POSTGRES_DB:\s*firstcome/);
    expect(text).toMatch(/EVENTSTORE_INSECURE:\s*"?true"?/);
    expect(text).toMatch(/KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR:\s*1/);
    expect(text).toMatch(/KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR:\s*1/);
    expect(text).toMatch(/KAFKA_TRANSACTION_STATE_LOG_MIN_ISR:\s*1/);
    expect(text).toMatch(/KAFKA_AUTO_CREATE_TOPICS_ENABLE:\s*"?false"?/);
  });
});
