import { spawnSync } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { clusterStackDown, clusterStackUp } from '../../scripts/stack.js';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { createRedis, Keys } from '../../projections/redis-ordering/index.js';
import { clusterWhole, kafkaLeaderOf, killKafkaNode, killRedisNode, redisPrimaryOf } from '../support/cluster.js';
import { describeOutage, outage, runCrowd, tally, wrongAnswers, type Call } from '../support/crowd.js';
import { collect, liveSocket } from '../support/live.js';
import { waitUntil } from '../support/wait.js';

/**
 * Beyond one machine: `stack:up -- --cluster` (three Kafka nodes, a Redis Cluster of three
 * primaries with a replica each), and firstcome on it through the failures such clusters have: the
 * broker that leads the drop's partition, the Redis primary that holds the drop's keys, both, each
 * SIGKILLed mid-burst. The cluster is stopped at the end only if this file started it.
 */
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
    const config = loadConfig({
      ...process.env,
      ...cluster.env,
      TOPIC_PREFIX: `t.cluster-${Date.now().toString(36)}`,
      EVENT_PARTITIONS: '3',
    });
    const admin = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      // a node may be fenced for a moment while three JVMs start on two busy cores: it rejoins
      const cluster3 = await waitUntil(
        () => admin.describeCluster(),
        (c) => c.brokers.length === 3,
        { what: 'three brokers registered', timeoutMs: 60_000 },
      );
      expect(cluster3.brokers.map((b) => b.port).sort()).toEqual([19092, 19093, 19094]);
      await ensureTopics(admin, config);
      const meta = await admin.fetchTopicMetadata({ topics: [config.topics.events] });
      expect(meta.topics[0]!.partitions.map((p) => p.replicas.length)).toEqual([3, 3, 3]);
      const [described] = (await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: config.topics.events }] }))
        .resources;
      expect(described!.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue).toBe('2');
      await admin.deleteTopics({ topics: [config.topics.events, config.topics.parked] });
    } finally {
      await admin.disconnect();
    }
  });

  it('runs a Redis Cluster of three primaries, each with a replica, covering every slot', () => {
    const nodes = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', '17000', 'cluster', 'nodes'], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n');
    expect(nodes.filter((l) => l.includes('master'))).toHaveLength(3);
    expect(nodes.filter((l) => l.includes('slave'))).toHaveLength(3);
    const info = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', '17000', 'cluster', 'info'], { encoding: 'utf8' }).stdout;
    expect(info).toContain('cluster_state:ok');
    expect(info).toContain('cluster_slots_assigned:16384');
  });
});

describe('firstcome on three brokers and a Redis Cluster, through failovers mid-burst', () => {
  let iso: Isolated;
  let writer: AppProcess;
  let apis: AppProcess[] = [];
  let admin: string;

  beforeAll(async () => {
    iso = await isolated('cluster', { ...cluster.env, ENTER_WAIT_MS: '1000' });
    // the single writer, the read side and the batch jobs in one process, the crowd over two API processes
    writer = await spawnApp(iso, 'writer,projector,worker');
    apis = await Promise.all([spawnApp(iso, 'api'), spawnApp(iso, 'api')]);
    admin = await token('boss', ['admin', 'codes:read']);
  }, 180_000);

  // the killed node back and in sync, whatever the test found, before the next fault
  afterEach(() => clusterWhole(iso.config), 180_000);

  afterAll(async () => {
    await Promise.all([writer, ...apis].filter(Boolean).map((p) => p.kill()));
    await iso?.cleanup().catch(() => undefined);
  }, 180_000);

  const USERS = 240;
  const STOCK = 150;
  /** ENTER_WAIT_MS (1 s) and a second for two busy cores: a call slower than this waited on the failover */
  const SLOW_MS = 2000;

  async function drop(id: string): Promise<void> {
    const created = await gql(apis[0]!.port, admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
      i: { id, title: id, reward: 'Cake', stock: STOCK, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
    });
    expect(created.errors).toBeUndefined();
  }

  /** A crowd of USERS (every 4th clicking twice, on both API processes); `faults` run once that many users are done. */
  async function crowd(id: string, faults: Record<number, () => void>): Promise<Call[]> {
    return runCrowd({
      campaignId: id,
      apiPorts: apis.map((a) => a.port),
      users: USERS,
      dupEvery: 4,
      userPrefix: `${id}-u`,
      concurrency: 16,
      onProgress: (done) => faults[done]?.(),
    });
  }

  /** The log once every unit is won and issued, and the answers held to it. */
  async function verdict(id: string, calls: Call[]) {
    const audit = await waitUntil(
      () => auditFromLog(iso.config, id),
      (a) => a.winners >= STOCK && a.gifticons >= STOCK,
      { what: 'every unit won and issued', timeoutMs: 90_000, everyMs: 500 },
    );
    return { audit, ...wrongAnswers(calls, audit) };
  }

  /** I1–I3 on the log; I4: every acknowledged entry there with its ticket; and no wrong answer. */
  function expectSound({ audit, wrong, acknowledged }: Awaited<ReturnType<typeof verdict>>): void {
    // what the API processes logged as unexpected, to tell a wrong answer's cause
    if (wrong.length > 0)
      for (const a of apis)
        console.log(
          a
            .output()
            .split('\n')
            .filter((l) => /unexpected error|append failed/.test(l))
            .slice(-5)
            .join('\n'),
        );
    expect(audit.problems).toEqual([]);
    expect(audit.winners).toBe(Math.min(STOCK, audit.entrants));
    expect(wrong).toEqual([]);
    expect(acknowledged).toBeGreaterThanOrEqual(STOCK);
  }

  /** I5: Redis (the admin `entry`, the counters) and Postgres (`winners`) say what the log says, codes included. */
  async function projectionsAgree(id: string, audit: Awaited<ReturnType<typeof auditFromLog>>): Promise<void> {
    const codes = audit.codes;
    const expected = [...audit.state.places].map(([user, p]) => ({
      user,
      ticket: p.ticket,
      position: p.position,
      status: p.position <= audit.stock ? 'WON' : 'LOST',
      code: codes.get(user) ?? null,
    }));
    const ENTRY = `query($c: ID!, $u: ID!) { entry(campaignId: $c, userId: $u) { ticket position status gifticon { code } } }`;
    const inRedis = await waitUntil(
      () =>
        Promise.all(
          expected.map(async (e) => {
            const r = await gql(apis[0]!.port, admin, ENTRY, { c: id, u: e.user });
            const got = r.data?.entry;
            return {
              user: e.user,
              ticket: got?.ticket,
              position: got?.position,
              status: got?.status,
              code: got?.gifticon?.code ?? null,
              error: r.errors?.[0]?.extensions?.code,
            };
          }),
        ),
      (got) => got.every((g, i) => g.code === expected[i]!.code && !g.error),
      { what: 'every code in Redis', timeoutMs: 30_000, everyMs: 500 },
    ).catch(() => null);
    expect(inRedis?.map(({ error: _, ...g }) => g) ?? 'Redis never agreed', 'Redis, entry by entry').toEqual(expected);
    const counters = await gql(apis[1]!.port, admin, `query($c: ID!) { campaign(id: $c) { entrants winners } }`, { c: id });
    expect(counters.data?.campaign).toEqual({ entrants: audit.entrants, winners: audit.winners });
    const winners = await waitUntil(
      () =>
        gql(
          apis[0]!.port,
          admin,
          `query($c: ID!) { winners(campaignId: $c, first: 500) { totalCount edges { node { userId position gifticon { code } } } } }`,
          { c: id },
        ),
      (r) =>
        r.data?.winners?.totalCount === audit.winners &&
        r.data.winners.edges.every((e: { node: { gifticon: unknown } }) => e.node.gifticon),
      { what: 'every winner in Postgres', timeoutMs: 60_000, everyMs: 500 },
    );
    const pg = winners.data!.winners.edges.map((e: { node: { userId: string; position: number; gifticon: { code: string } } }) => ({
      user: e.node.userId,
      position: e.node.position,
      code: e.node.gifticon.code,
    }));
    expect(pg).toEqual(
      expected
        .filter((e) => e.status === 'WON')
        .sort((a, b) => a.position - b.position)
        .map(({ user, position, code }) => ({ user, position, code })),
    );
  }

  it('loses nothing acknowledged when the broker that leads the drop’s partition is killed mid-burst (I1–I4)', async () => {
    const C = 'broker-kill';
    await drop(C);
    const leader = await kafkaLeaderOf(iso.config, C);
    let killedAt = 0;
    const calls = await crowd(C, { 60: () => (killKafkaNode(leader), (killedAt = Date.now())) });
    const v = await verdict(C, calls);
    console.log(
      `broker failover (leader ${leader} SIGKILLed after 60 of ${USERS} users): ${describeOutage(outage(calls, killedAt, SLOW_MS), SLOW_MS)}; ${v.acknowledged} acknowledged entries checked, ${v.wrong.length} wrong answers; ${JSON.stringify(tally(calls))}`,
    );
    expectSound(v);
  });

  it('gives no caller a wrong answer when the Redis primary that holds the drop is killed mid-burst, and every projection ends as the log (I1–I5)', async () => {
    const C = 'redis-kill';
    await drop(C);
    const primary = redisPrimaryOf(C, iso.config.REDIS_PREFIX);
    let killedAt = 0;
    const calls = await crowd(C, { 60: () => (killRedisNode(primary), (killedAt = Date.now())) });
    const v = await verdict(C, calls);
    console.log(
      `redis failover (primary ${primary} SIGKILLed after 60 of ${USERS} users): ${describeOutage(outage(calls, killedAt, SLOW_MS), SLOW_MS)}; ${v.acknowledged} acknowledged entries checked, ${v.wrong.length} wrong answers; ${JSON.stringify(tally(calls))}`,
    );
    expectSound(v);
    await projectionsAgree(C, v.audit);
  });

  it('survives both in one drop: the partition’s leader broker, then the drop’s Redis primary (I1–I5)', async () => {
    const C = 'both-kill';
    await drop(C);
    const leader = await kafkaLeaderOf(iso.config, C);
    const primary = redisPrimaryOf(C, iso.config.REDIS_PREFIX);
    const at = { broker: 0, redis: 0 };
    const calls = await crowd(C, {
      40: () => (killKafkaNode(leader), (at.broker = Date.now())),
      140: () => (killRedisNode(primary), (at.redis = Date.now())),
    });
    const v = await verdict(C, calls);
    // each fault measured on its own: the broker's on calls done before the Redis kill
    const broker = outage(
      calls.filter((c) => c.endedAt < at.redis),
      at.broker,
      SLOW_MS,
    );
    const redis = outage(
      calls.filter((c) => c.startedAt >= at.broker),
      at.redis,
      SLOW_MS,
    );
    console.log(
      `both: broker ${leader} SIGKILLed after 40 users: ${describeOutage(broker, SLOW_MS)}; redis ${primary} after 140: ${describeOutage(redis, SLOW_MS)}; ${v.acknowledged} acknowledged entries checked, ${v.wrong.length} wrong answers; ${JSON.stringify(tally(calls))}`,
    );
    expectSound(v);
    await projectionsAgree(C, v.audit);
  });

  it('replays the Redis projection from the log across the cluster’s primaries: a lost write comes back, the same winners, positions and codes (I5)', async () => {
    const C = 'replayed';
    await drop(C);
    const calls = await crowd(C, {});
    const v = await verdict(C, calls);
    expectSound(v);
    await projectionsAgree(C, v.audit);
    // a write the projection lost (as a failover may lose one): nothing but a replay brings it back
    const redis = createRedis(iso.config);
    expect(await redis.unlink(new Keys(iso.config.REDIS_PREFIX).gifts(C))).toBe(1);
    redis.disconnect();
    const started = await gql(apis[0]!.port, admin, `mutation { replay(target: REDIS) { id } }`);
    expect(started.errors).toBeUndefined();
    const job = await waitUntil(
      () => gql(apis[1]!.port, admin, `query($id: ID!) { job(id: $id) { status error } }`, { id: started.data!.replay.id }),
      (r) => ['SUCCEEDED', 'FAILED'].includes(r.data?.job?.status),
      { what: 'the replay done', timeoutMs: 90_000, everyMs: 500 },
    );
    expect(job.data!.job).toEqual({ status: 'SUCCEEDED', error: null });
    await projectionsAgree(C, v.audit);
  });

  it('pushes a watcher’s decision and code over the sharded change feed, which follows the campaign’s slot to its new primary', async () => {
    const C = 'live';
    await drop(C);
    const user = await token('live-watcher');
    const socket = liveSocket(apis[1]!.port, user);
    const live = collect<{ status: string; ticket: string; gifticon: { code: string } | null } | null>(
      socket,
      `subscription($c: ID!) { myEntry(campaignId: $c) { status ticket gifticon { code } } }`,
      { c: C },
    );
    try {
      await live.until((v) => v === null);
      // the campaign's channel lives on its primary: that node goes, the subscriber must follow the slot
      killRedisNode(redisPrimaryOf(C, iso.config.REDIS_PREFIX));
      const entered = await waitUntil(
        () => gql(apis[0]!.port, user, `mutation($c: ID!) { enter(campaignId: $c) { entry { ticket } } }`, { c: C }).catch(() => null),
        (r) => Boolean(r?.data?.enter?.entry),
        { what: 'an entry once the replica took over', timeoutMs: 60_000, everyMs: 250 },
      );
      const seen = await live.until((v) => v?.gifticon?.code !== undefined, 60_000);
      // the writer applies its commit to Redis as soon as the broker acknowledged it; a reader of the log may see it a moment later
      const audit = await waitUntil(
        () => auditFromLog(iso.config, C),
        (x) => x.gifticons === 1,
        { what: 'the code in the log', everyMs: 250 },
      );
      const code = [...audit.codes.values()][0];
      expect(seen.at(-1)).toEqual({ status: 'WON', ticket: entered!.data!.enter.entry.ticket, gifticon: { code } });
    } finally {
      live.stop();
      await socket.dispose();
    }
  });
});
