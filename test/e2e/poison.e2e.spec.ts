import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pg from 'pg';
import { EVENT_VERSION } from '../../src/domain/events.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { auditFromLog } from '../support/audit.js';
import { waitUntil } from '../support/wait.js';
import { eventually, gql, isolated, pool, spawnApp, token, type AppProcess, type GqlResult, type Isolated } from '../support/app.js';

/**
 * Records that are not events of this log, written straight onto every partition by "another
 * producer": parked, never fatal. An event of the next version stops its partition instead.
 */
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { status position } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { status position gifticon { code } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const WINNERS = `query($c: ID!) { winners(campaignId: $c, first: 1) { totalCount } }`;
const GIFTICONS = `query($c: ID!) { gifticons(campaignId: $c, first: 1000) { totalCount edges { node { userId code } } } }`;
const PARKED = `query($after: String, $status: ParkedStatus) { parked(first: 2, after: $after, status: $status) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id consumer reason error topic partition offset key raw parkedAt status attempts retriedAt retriedAs } } } }`;
const RETRY = `mutation($id: ID!) { retryParked(id: $id) { id status attempts error retriedAs } }`;

const PARTITIONS = 2;
let iso: Isolated;
let app: AppProcess;
let admin: string;
let producer: Producer;
let kafka: Kafka;

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();
/** a campaign id of the given partition */
const idOn = (partition: number, prefix: string) => {
  for (let i = 0; ; i++) if (partitionFor(`${prefix}-${i}`, PARTITIONS) === partition) return `${prefix}-${i}`;
};
const poison = (partition: number) => [
  '{"type":"EntrantRegistered","version":1,"eventId":"x","campai',
  JSON.stringify({
    type: 'EntrantRegistered',
    version: 99,
    eventId: `v99-${partition}`,
    campaignId: 'whatever',
    occurredAt: '2026-11-29T12:00:00.000Z',
    userId: 'mallory',
  }),
  JSON.stringify({ hello: 'world' }),
];

async function allParked() {
  const nodes: Record<string, any>[] = [];
  let after: string | null = null;
  for (;;) {
    const r: GqlResult<Record<string, any>> = await gql(app.port, admin, PARKED, { after });
    expect(r.errors).toBeUndefined();
    nodes.push(...r.data!.parked.edges.map((e: { node: unknown }) => e.node));
    if (!r.data!.parked.pageInfo.hasNextPage) return { nodes, totalCount: r.data!.parked.totalCount as number };
    after = r.data!.parked.pageInfo.endCursor;
  }
}

async function metric(name: string): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

/** users enter; each one's decision, read with myEntry until it is made */
async function drop(campaignId: string, users: string[]) {
  const tokens = await Promise.all(users.map((u) => token(u)));
  const rejections: string[] = [];
  await pool(tokens, 32, async (t) => {
    const r = await gql(app.port, t, ENTER, { c: campaignId });
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    if (r.data!.enter.rejection) rejections.push(r.data!.enter.rejection);
  });
  return Object.assign(tokens, { rejections });
}

async function decided(campaignId: string, t: string): Promise<string> {
  const r = await eventually(
    () => gql(app.port, t, MY, { c: campaignId }),
    (r) => r.data?.myEntry?.status !== 'QUEUED',
    30_000,
  );
  return r.data?.myEntry?.status;
}

beforeAll(async () => {
  iso = await isolated('poison', { EVENT_PARTITIONS: String(PARTITIONS) });
  app = await spawnApp(iso, 'api,writer,projector,worker');
  admin = await token('boss', ['admin', 'codes:read']);
  kafka = new Kafka({ brokers: iso.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  producer = kafka.producer();
  await producer.connect();
  for (let p = 0; p < PARTITIONS; p++) {
    await producer.send({
      topic: iso.config.topics.events,
      acks: -1,
      messages: poison(p).map((value) => ({ partition: p, key: 'x', value })),
    });
  }
});

afterAll(async () => {
  await producer?.disconnect();
  await app?.kill('SIGTERM');
  await iso?.cleanup();
});

describe('records that are not events of this log', () => {
  const STOCK = 10;
  const campaigns = [idOn(0, 'after-poison'), idOn(1, 'after-poison')];

  it('a drop on the partitions that hold them is decided and projected', async () => {
    for (const c of campaigns)
      expect(
        (await gql(app.port, admin, CREATE, { i: { id: c, title: c, reward: 'r', stock: STOCK, closesAt: inAnHour() } })).errors,
      ).toBeUndefined();
    for (const c of campaigns) {
      const tokens = await drop(
        c,
        Array.from({ length: 30 }, (_, i) => `${c}-u${i}`),
      );
      const statuses = await Promise.all(tokens.map((t) => decided(c, t)));
      expect(statuses.filter((s) => s === 'WON')).toHaveLength(STOCK);
      // the rest lost, or were turned away at the gate once the stock was taken (no entry)
      expect(tokens.rejections.every((r) => r === 'SOLD_OUT')).toBe(true);
      expect(statuses.filter((s) => s === 'LOST').length + tokens.rejections.length).toBe(30 - STOCK);
      // WON is told before the writer's transaction commits: the log has every winner once it does
      const audit = await waitUntil(
        () => auditFromLog(iso.config, c),
        (a) => a.winners >= STOCK,
        { what: `every winner of ${c} committed`, timeoutMs: 30_000 },
      );
      expect(audit.problems).toEqual([]);
      expect(audit.winners).toBe(STOCK);
      const winners = await eventually(
        () => gql(app.port, admin, WINNERS, { c }),
        (r) => r.data?.winners.totalCount === STOCK,
        30_000,
      );
      expect(winners.data!.winners.totalCount).toBe(STOCK);
    }
  });

  it('each is parked once, with its error, where it came from and its raw bytes, and counted', async () => {
    const { nodes, totalCount } = await eventually(allParked, (r) => r.totalCount >= 3 * PARTITIONS, 30_000);
    expect(totalCount).toBe(3 * PARTITIONS);
    for (let p = 0; p < PARTITIONS; p++) {
      const here = nodes.filter((n) => n.partition === p).sort((a, b) => Number(a.offset) - Number(b.offset));
      // offset 0 of every partition is the log's genesis record, which is no event and is not parked
      expect(here.map((n) => n.id)).toEqual([1, 2, 3].map((o) => `${p}-${o}`));
      expect(here.map((n) => Buffer.from(n.raw, 'base64').toString('utf8'))).toEqual(poison(p));
      expect(here.map((n) => n.error)).toEqual([
        expect.stringMatching(/not JSON/),
        expect.stringMatching(/version 99/),
        expect.stringMatching(/no event type/),
      ]);
      for (const n of here)
        expect(n).toMatchObject({ reason: 'FOREIGN', topic: iso.config.topics.events, status: 'PARKED', attempts: 0, key: 'x' });
      expect(['single-writer', 'prisma-tables', 'batch-triggers']).toContain(here[0]!.consumer);
    }
    expect(await metric('firstcome_parked_total{')).toMatch(
      /firstcome_parked_total\{consumer="(single-writer|prisma-tables|batch-triggers)"\} [1-9]/,
    );
    const ready = await fetch(`http://127.0.0.1:${app.port}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('the list is admin-only and its cursor is checked', async () => {
    const user = await gql(app.port, await token('eve'), PARKED, {});
    expect(user.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const bad = await gql(app.port, admin, PARKED, { after: 'nope' });
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
  });

  it('retrying a record that is still not an event keeps it parked, the attempt counted', async () => {
    const r = await gql(app.port, admin, RETRY, { id: '0-1' });
    expect(r.errors).toBeUndefined();
    expect(r.data!.retryParked).toMatchObject({
      id: '0-1',
      status: 'PARKED',
      attempts: 1,
      error: expect.stringMatching(/not JSON/),
      retriedAs: null,
    });
    const missing = await gql(app.port, admin, RETRY, { id: '9-999' });
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('an event the read side cannot apply', () => {
  const c = idOn(0, 'unapplied');
  let db: pg.Client;

  beforeAll(async () => {
    db = new pg.Client({ connectionString: iso.config.DATABASE_URL });
    await db.connect();
    // a rule of the tables the events break: stands in for a schema that a fix will change
    await db.query(`CREATE FUNCTION refuse_blocked() RETURNS trigger AS $$ BEGIN
      IF NEW.user_id = '${c}-blocked' THEN RAISE EXCEPTION 'blocked user' USING ERRCODE = 'check_violation'; END IF;
      RETURN NEW; END $$ LANGUAGE plpgsql`);
    await db.query(`CREATE TRIGGER refuse_blocked BEFORE INSERT ON gifticons FOR EACH ROW EXECUTE FUNCTION refuse_blocked()`);
  });

  afterAll(async () => {
    await db?.end();
  });

  it('is parked alone; the rest of its batch is written', async () => {
    expect(
      (await gql(app.port, admin, CREATE, { i: { id: c, title: c, reward: 'r', stock: 5, closesAt: inAnHour() } })).errors,
    ).toBeUndefined();
    const tokens = await drop(c, [`${c}-a`, `${c}-blocked`, `${c}-b`]);
    for (const t of tokens) expect(await decided(c, t)).toBe('WON');
    const id = `prisma-tables:${partitionFor(c, PARTITIONS)}-`;
    const parked = await eventually(allParked, (r) => r.nodes.some((n) => n.id.startsWith(id)), 30_000);
    const mine = parked.nodes.filter((n) => n.id.startsWith(id));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      reason: 'UNAPPLIED',
      consumer: 'prisma-tables',
      status: 'PARKED',
      error: expect.stringMatching(/23514: blocked user/),
    });
    // the record as the log holds it: a decision's events travel packed, the winner with its gifticon
    const held = [JSON.parse(Buffer.from(mine[0]!.raw, 'base64').toString('utf8')) as unknown].flat();
    expect(held).toContainEqual(expect.objectContaining({ type: 'GifticonIssued', userId: `${c}-blocked` }));
    const gifts = await eventually(
      () => gql(app.port, admin, GIFTICONS, { c }),
      (r) => r.data?.gifticons.totalCount === 2,
      30_000,
    );
    expect(gifts.data!.gifticons.edges.map((e: any) => e.node.userId).sort()).toEqual([`${c}-a`, `${c}-b`]);
  });

  it('retryParked applies it once the fix is in, and the record says so', async () => {
    const id = (await allParked()).nodes.find((n) => n.id.startsWith('prisma-tables:'))!.id;
    const still = await gql(app.port, admin, RETRY, { id });
    expect(still.data!.retryParked).toMatchObject({ status: 'PARKED', attempts: 1, error: expect.stringMatching(/blocked user/) });

    await db.query('DROP TRIGGER refuse_blocked ON gifticons');
    const r = await gql(app.port, admin, RETRY, { id });
    expect(r.errors).toBeUndefined();
    expect(r.data!.retryParked).toMatchObject({ id, status: 'RETRIED', attempts: 2, retriedAs: 'applied to prisma-tables' });
    const gifts = await gql(app.port, admin, GIFTICONS, { c });
    expect(gifts.data!.gifticons.totalCount).toBe(3);
    const blocked = await gql(app.port, await token(`${c}-blocked`), MY, { c });
    const code = blocked.data!.myEntry.gifticon.code;
    expect(gifts.data!.gifticons.edges.find((e: any) => e.node.userId === `${c}-blocked`).node.code).toBe(code);
    // a second retry changes nothing
    const again = await gql(app.port, admin, RETRY, { id });
    expect(again.data!.retryParked).toMatchObject({ status: 'RETRIED', attempts: 2 });
    expect((await gql(app.port, admin, GIFTICONS, { c })).data!.gifticons.totalCount).toBe(3);
  });
});

describe('an event of the next version', () => {
  const stopped = idOn(1, 'upgrade');
  const other = idOn(0, 'upgrade');

  it('stops its partition with a clear error, while the other partition goes on', async () => {
    for (const c of [stopped, other])
      expect(
        (await gql(app.port, admin, CREATE, { i: { id: c, title: c, reward: 'r', stock: 50, closesAt: inAnHour() } })).errors,
      ).toBeUndefined();
    // the first entrant is decided before the newer event
    const [first] = await drop(stopped, [`${stopped}-first`]);
    expect(await decided(stopped, first!)).toBe('WON');
    await producer.send({
      topic: iso.config.topics.events,
      acks: -1,
      messages: [
        {
          partition: partitionFor(stopped, PARTITIONS),
          key: stopped,
          value: JSON.stringify({
            type: 'EntrantRegistered',
            version: EVENT_VERSION + 1,
            eventId: 'v2',
            campaignId: stopped,
            occurredAt: new Date().toISOString(),
            userId: 'from-the-future',
            tier: 'gold',
          }),
        },
      ],
    });
    const ready = await eventually(
      async () => {
        const r = await fetch(`http://127.0.0.1:${app.port}/readyz`);
        return { status: r.status, body: (await r.json()) as { failing: Record<string, string> } };
      },
      (r) => r.status === 503 && Object.keys(r.body.failing).length >= 3,
      30_000,
    );
    expect(ready.status).toBe(503);
    // every consumer of the partition stops there: the writer, the tables, the triggers
    expect(Object.keys(ready.body.failing).sort()).toEqual(['projector/prisma-tables', 'worker/triggers', 'writer']);
    for (const error of Object.values(ready.body.failing)) {
      expect(error).toMatch(/stopped at partition 1 offset \d+: EntrantRegistered of version 2, this build knows version 1/);
    }

    const late = await drop(stopped, [`${stopped}-late`]);
    const others = await drop(
      other,
      Array.from({ length: 5 }, (_, i) => `${other}-u${i}`),
    );
    // the other partition is decided, after the late entry was appended…
    for (const t of others) expect(await decided(other, t)).toBe('WON');
    // …and the late entry behind the newer event is not: it is not misread, nor is it skipped
    const mine = await gql(app.port, late[0]!, MY, { c: stopped });
    expect(mine.data!.myEntry).toMatchObject({ status: 'QUEUED' });
    const parked = await allParked();
    expect(
      parked.nodes.some((n) =>
        Buffer.from(n.raw ?? '', 'base64')
          .toString()
          .includes('from-the-future'),
      ),
    ).toBe(false);
  });
});
