import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { EVENT_VERSION } from '../../src/domain/events.js';
import { createRedis, EnterGate, RedisCampaignLines, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { elapse, waitUntil } from '../support/wait.js';

/** The user's append claim against the real Redis: held while an append outlasts its TTL, and only by its holder. */
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const ordering = new RedisOrdering(redis, `t:claim-${randomBytes(4).toString('hex')}`);
const gate = new EnterGate(ordering);
const P0 = { topic: 'topic', partition: 0 };

afterAll(async () => {
  const keys = await redis.keys(ordering.keys.all());
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

it('keeps a held claim past its TTL, so a second click of the user does not append meanwhile; once let go, the claim expires', async () => {
  const lines = new RedisCampaignLines(ordering, 'topic', pino({ level: 'silent' }));
  const created = {
    type: 'CampaignCreated',
    version: EVENT_VERSION,
    eventId: 'created:c',
    campaignId: 'c',
    occurredAt: new Date().toISOString(),
    title: 'T',
    reward: 'R',
    stock: 5,
    opensAt: new Date(0).toISOString(),
    closesAt: new Date(Date.now() + 60_000).toISOString(),
  } as const;
  await lines.place(0, { facts: [{ event: created, replaying: false }], lines: [] });

  const first = await gate.check('c', 'u', 'first', 300, P0, true);
  expect(first).toMatchObject({ kind: 'new', claimed: true });
  const letGo = gate.holdClaim('c', 'u', 'first', 300);
  await elapse(900, 'three of the claim TTLs: a claim not held would have expired');
  expect(await gate.check('c', 'u', 'second', 300, P0, false)).toMatchObject({ kind: 'new', claimed: false });
  letGo();
  await waitUntil(
    () => redis.exists(ordering.keys.claim('c', 'u')),
    (n) => n === 0,
    { what: 'the claim let go expired', timeoutMs: 5_000, everyMs: 25 },
  );
  expect(await gate.check('c', 'u', 'second', 300, P0, false)).toMatchObject({ kind: 'new', claimed: true });
});

it('extends a claim only for the request that holds it', async () => {
  const claim = ordering.keys.claim('d', 'u');
  await redis.set(claim, 'theirs', 'PX', 300);
  expect(await redis.fcHoldClaim(claim, 'mine', 60_000)).toBe(0);
  expect(await redis.pttl(claim)).toBeLessThanOrEqual(300);
  expect(await redis.fcHoldClaim(claim, 'theirs', 60_000)).toBe(1);
  expect(await redis.pttl(claim)).toBeGreaterThan(300);
});
