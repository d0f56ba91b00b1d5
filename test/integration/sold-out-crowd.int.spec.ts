import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PowChallenges } from '../../src/api/challenge.js';
import { EnterService, ReplyWaiter, type EnterResult } from '../../src/api/enter.js';
import { SoldOutCrowd } from '../../src/api/soldOut.js';
import { loadConfig } from '../../src/config.js';
import { campaignClosed, EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import {
  ChannelSubscriber,
  CrowdReads,
  createRedis,
  EnterGate,
  RedisCampaignLines,
  RedisChangeFeed,
  RedisOrdering,
  replyChannelOf,
} from '../../projections/redis-ordering/index.js';
import { holdingRelay } from '../support/tcpHold.js';
import { waitUntil } from '../support/wait.js';

/**
 * Two API processes' `enter` (EnterService, each with its own sold-out memory and subscriber) over
 * the real Redis and the real Kafka appender; the writer's side is its real Redis adapters (the
 * campaign line, the change feed), driven step by step so both orders of arrival are certain. Every
 * answer is held to what the gate answers for the same user at the same point: an entry with the
 * user's ticket for one who is in line (pending or placed), SOLD_OUT for anyone else.
 */
const id = randomBytes(4).toString('hex');
const config = loadConfig({
  ...process.env,
  NODE_ENV: 'test',
  TOPIC_PREFIX: `t.soldout-${id}`,
  REDIS_PREFIX: `t:soldout-${id}`,
  EVENT_PARTITIONS: '1',
  LOG_LEVEL: 'warn',
});
const redis = createRedis(config);
const ordering = new RedisOrdering(redis, config.REDIS_PREFIX);
const gate = new EnterGate(ordering);
const lines = new RedisCampaignLines(ordering, config.topics.events, pino({ level: 'silent' }));
const feed = new RedisChangeFeed(ordering, pino({ level: 'silent' }));
const P0 = { topic: config.topics.events, partition: 0 };
const kafka = createKafka(config, 'sold-out-test');
let appender: EventAppender;

/** The real appender; an append may be held by the test until it lets it go. */
let hold: Promise<void> | null = null;
const heldAppender = () =>
  ({
    append: async (e: CampaignEvent) => {
      if (hold) await hold;
      return appender.append(e);
    },
  }) as unknown as EventAppender;

interface Api {
  enter: EnterService;
  crowd: SoldOutCrowd;
  waiter: ReplyWaiter;
}
const apis: Api[] = [];

async function api(name: string, crowd = new SoldOutCrowd(CrowdReads.of(ordering)!)): Promise<Api> {
  const waiter = await ReplyWaiter.listen(ChannelSubscriber.of(redis), replyChannelOf(ordering, name));
  // no writer answers: an appended entry is answered QUEUED at once, and stays pending in Redis
  const enter = new EnterService(ordering, gate, heldAppender(), waiter, new PowChallenges('x'.repeat(32)), {
    instance: name,
    topic: P0.topic,
    partitions: 1,
    waitMs: 1,
    crowd,
  });
  const a = { enter, crowd, waiter };
  apis.push(a);
  return a;
}

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config);
  await admin.disconnect();
  appender = await EventAppender.connect(kafka, config);
  await redis.set(ordering.keys.built(P0.topic, P0.partition), 'test-build');
});

afterAll(async () => {
  for (const a of apis) await Promise.all([a.crowd.close(), a.waiter.close()]);
  await appender?.close();
  const keys = await redis.keys(`${config.REDIS_PREFIX}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [config.topics.events, config.topics.parked] }).catch(() => undefined);
  await admin.disconnect();
});

async function create(campaignId: string, stock: number) {
  const event: CampaignEvent = {
    type: 'CampaignCreated',
    version: EVENT_VERSION,
    eventId: `created:${campaignId}`,
    campaignId,
    occurredAt: new Date().toISOString(),
    title: 'T',
    reward: 'R',
    stock,
    opensAt: new Date(0).toISOString(),
    closesAt: new Date(Date.now() + 600_000).toISOString(),
  };
  await lines.place(0, { facts: [{ event, replaying: false }], lines: [] });
}

let offset = 1_000_000;
/** Users placed by the writer's own adapter (offsets of their own), announced as the writer announces them. */
async function placeByWriter(campaignId: string, users: string[]) {
  const entries = users.map((userId) => ({ offset: BigInt(offset++), userId, rejection: null }));
  expect(await lines.place(0, { facts: [], lines: [{ campaignId, entries }] })).not.toBe('REBUILD');
  await feed.announce([{ campaignId, users }]);
}

/** What the gate says of the user now, without counting or claiming: their ticket, or SOLD_OUT. */
async function gateSays(campaignId: string, userId: string): Promise<string> {
  const g = await gate.check(campaignId, userId, 'oracle', 1, P0, false);
  if (g.kind === 'placed' || g.kind === 'pending') return g.ticket;
  if (g.kind === 'new' && g.taken >= g.terms.stock) return 'SOLD_OUT';
  throw new Error(`the campaign is not sold out: ${JSON.stringify(g)}`);
}

/** a connection that subscribed (what it sent: RESP, in ioredis's lower case) */
const subscribing = (sent: string) => /\r\nsubscribe\r\n/i.test(sent);
const count = (sent: string[], command: RegExp) => sent.reduce((n, t) => n + (t.match(command)?.length ?? 0), 0);
const said = (r: EnterResult) => ('rejection' in r ? r.rejection : r.entry.ticket);
const answering = (a: Api) =>
  waitUntil(
    async () => a.crowd.answering,
    (n) => n > 0,
    { what: 'the campaign answered from memory' },
  );

describe('a sold-out crowd answered in the API process', () => {
  it('answers as the gate does over a crowd with repeat clicks on two processes, entrants known before sold out was learned', async () => {
    const C = 'before';
    await create(C, 3);
    const [a, b] = [await api('a1'), await api('b1')];
    // two users appended through the API (pending), three placed by the writer: the line is full
    const pending = [await a.enter.enter(C, 'p0'), await b.enter.enter(C, 'p1')];
    expect(pending.every((r) => 'entry' in r)).toBe(true);
    await placeByWriter(C, ['w0', 'w1', 'w2']);
    // each process learns it from the gate's answer to a fresh user
    expect(await a.enter.enter(C, 'fresh-a')).toEqual({ rejection: 'SOLD_OUT' });
    expect(await b.enter.enter(C, 'fresh-b')).toEqual({ rejection: 'SOLD_OUT' });
    await Promise.all([answering(a), answering(b)]);

    const crowd = [...['p0', 'p1', 'w0', 'w1', 'w2'], ...Array.from({ length: 150 }, (_, i) => `x${i}`)];
    const clicks = crowd.flatMap((u, i) => [
      { u, api: i % 2 ? a : b },
      { u, api: i % 2 ? b : a },
      { u, api: i % 3 ? a : b },
    ]);
    const answers = await Promise.all(clicks.map(async (c) => ({ u: c.u, said: said(await c.api.enter.enter(C, c.u)) })));
    for (const { u, said: s } of answers) expect(`${u}: ${s}`).toBe(`${u}: ${await gateSays(C, u)}`);
    expect(answers.filter((x) => x.u.startsWith('x')).every((x) => x.said === 'SOLD_OUT')).toBe(true);
    // most of the crowd never reached the gate; every call is counted all the same
    expect(a.crowd.stats.answered + b.crowd.stats.answered).toBeGreaterThan(400);
    expect(await ordering.requests(C)).toBe(2 + 2 + clicks.length);
  });

  it('gives an entry, never SOLD_OUT, to a user whose entry joined the line after both processes learned it was sold out', async () => {
    const C = 'after';
    await create(C, 2);
    const [a, b] = [await api('a2'), await api('b2')];
    // `late` passes the gate while a place is left; its append is held until the line is full
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    const late = a.enter.enter(C, 'late');
    await waitUntil(
      () => redis.exists(ordering.keys.claim(C, 'late')),
      (n) => n === 1,
      { what: "late's claim" },
    );
    hold = null;
    await placeByWriter(C, ['w0', 'w1']);
    expect(await a.enter.enter(C, 'y0')).toEqual({ rejection: 'SOLD_OUT' });
    expect(await b.enter.enter(C, 'y1')).toEqual({ rejection: 'SOLD_OUT' });
    await Promise.all([answering(a), answering(b)]);
    expect(await b.enter.enter(C, 'y2')).toEqual({ rejection: 'SOLD_OUT' });

    // the held append lands: `late` is pending; its next clicks, on either process, get its entry
    release();
    const first = await late;
    expect('entry' in first).toBe(true);
    const ticket = said(first);
    expect(await gateSays(C, 'late')).toBe(ticket);
    const again = await Promise.all([b.enter.enter(C, 'late'), a.enter.enter(C, 'late'), b.enter.enter(C, 'late')]);
    expect(again.map(said)).toEqual([ticket, ticket, ticket]);

    // one the writer placed (its API never marked it), announced as the writer announces
    await placeByWriter(C, ['placed-late']);
    const placed = await gateSays(C, 'placed-late');
    expect([said(await b.enter.enter(C, 'placed-late')), said(await a.enter.enter(C, 'placed-late'))]).toEqual([placed, placed]);

    // and the rest of the crowd is still answered from memory
    const before = b.crowd.stats.answered;
    expect(await b.enter.enter(C, 'y3')).toEqual({ rejection: 'SOLD_OUT' });
    expect(b.crowd.stats.answered).toBe(before + 1);
    // late, y0–y2, late's three clicks, placed-late's two, y3
    expect(await ordering.requests(C)).toBe(1 + 3 + 3 + 2 + 1);
  });

  it("waits for the announcements Redis made before a user's click: a late subscription never answers SOLD_OUT to one in line", async () => {
    const C = 'barrier';
    await create(C, 1);
    // b's memory reads Redis through a relay that can hold what Redis sends it, its subscription included
    const relay = await holdingRelay({ host: new URL(config.REDIS_URL).hostname, port: Number(new URL(config.REDIS_URL).port || 6379) });
    const slow = new RedisOrdering(createRedis(`redis://127.0.0.1:${relay.port}`), config.REDIS_PREFIX);
    const b = await api('b4', new SoldOutCrowd(CrowdReads.of(slow)!));
    try {
      await placeByWriter(C, ['w0']);
      expect(await b.enter.enter(C, 'v0')).toEqual({ rejection: 'SOLD_OUT' });
      await answering(b);
      // the writer places a user and announces it; b's subscription has not delivered it yet
      relay.hold();
      const calls = () =>
        count(
          relay.sent().filter((t) => !subscribing(t)),
          /\r\neval(sha)?\r\n/gi,
        );
      const barriers = () => count(relay.sent().filter(subscribing), /\r\nping\r\n/gi);
      const [callsBefore, barriersBefore] = [calls(), barriers()];
      await placeByWriter(C, ['in-line']);
      const ticket = await gateSays(C, 'in-line');
      let settled = false;
      const answer = b.enter.enter(C, 'in-line').finally(() => (settled = true));
      // b's turn of answers has called Redis (its counting script); its answer comes back at once,
      // while the subscription stays late: b must not answer before the subscription catches up
      await waitUntil(
        async () => calls(),
        (n) => n > callsBefore,
        { what: "b's turn of answers calling Redis" },
      );
      relay.release((sent) => !subscribing(sent));
      await waitUntil(
        async () => ({ settled, barriers: barriers() }),
        (v) => v.settled || v.barriers > barriersBefore,
        { what: 'b answered, or asked its subscription for a barrier' },
      );
      relay.release();
      expect(said(await answer)).toBe(ticket);
    } finally {
      relay.release();
      apis.splice(apis.indexOf(b), 1);
      await Promise.all([b.crowd.close(), b.waiter.close()]);
      await relay.close();
      slow.redis.disconnect();
    }
  });

  it('lets the gate answer once the campaign is closed, not SOLD_OUT from memory', async () => {
    const C = 'closing';
    await create(C, 1);
    const a = await api('a3');
    await placeByWriter(C, ['w0']);
    expect(await a.enter.enter(C, 'z0')).toEqual({ rejection: 'SOLD_OUT' });
    await answering(a);
    const closed = campaignClosed(C, 'admin', new Date(Date.now() - 1));
    await lines.place(0, { facts: [{ event: closed, replaying: false }], lines: [] });
    expect(await a.enter.enter(C, 'z1')).toEqual({ rejection: 'CLOSED' });
  });
});
