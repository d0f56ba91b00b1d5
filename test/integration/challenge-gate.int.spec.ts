import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { campaignChallengeSet, EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import { createRedis, EnterGate, RedisCampaignLines, RedisOrdering } from '../../projections/redis-ordering/index.js';

/** The challenge's part of the Redis projection (issue 34): metaSet.lua, lookup.lua's answer and claim, the spent solutions. */
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const ordering = new RedisOrdering(redis, `t:pow-${randomBytes(4).toString('hex')}`);
const lines = new RedisCampaignLines(ordering, 'topic', pino({ level: 'silent' }));
const gate = new EnterGate(ordering);
const P0 = { topic: 'topic', partition: 0 };

afterAll(async () => {
  const keys = await redis.keys(ordering.keys.all());
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

const created = (id: string, challenge?: { mode: 'OFF' | 'POW'; difficulty: number | null }): CampaignEvent => ({
  type: 'CampaignCreated',
  version: EVENT_VERSION,
  eventId: `created:${id}`,
  campaignId: id,
  occurredAt: new Date().toISOString(),
  title: 'T',
  reward: 'R',
  stock: 5,
  opensAt: new Date(0).toISOString(),
  closesAt: new Date(Date.now() + 60_000).toISOString(),
  ...(challenge ? { challenge } : {}),
});
const apply = (...events: CampaignEvent[]) => lines.place(0, { facts: events.map((event) => ({ event, replaying: false })), lines: [] });

describe('the challenge setting in the Redis projection', () => {
  it('follows CampaignCreated and every CampaignChallengeSet, in log order', async () => {
    await apply(created('a'));
    expect((await ordering.meta('a'))!.challenge).toEqual({ mode: 'OFF', difficulty: null });
    await apply(
      campaignChallengeSet('a', { mode: 'POW', difficulty: 1000 }, '1'),
      campaignChallengeSet('a', { mode: 'POW', difficulty: 4000 }, '2'),
    );
    expect((await ordering.meta('a'))!.challenge).toEqual({ mode: 'POW', difficulty: 4000 });
    await apply(campaignChallengeSet('a', { mode: 'OFF', difficulty: null }, '3'));
    expect((await ordering.meta('a'))!.challenge).toEqual({ mode: 'OFF', difficulty: null });
    expect(await redis.hexists(ordering.keys.meta('a'), 'challengeDifficulty')).toBe(0);
    // a setting for a campaign Redis does not hold creates no meta
    await apply(campaignChallengeSet('ghost', { mode: 'POW', difficulty: 1000 }, '4'));
    expect(await redis.exists(ordering.keys.meta('ghost'))).toBe(0);
  });

  it('lookup.lua answers the setting, and gives no append claim to a call without the solution a POW campaign asks for', async () => {
    await apply(created('p', { mode: 'POW', difficulty: 1000 }));
    const bare = await gate.check('p', 'u', 'tok1', 5000, P0, true, false);
    expect(bare).toMatchObject({ kind: 'new', claimed: false, challenge: { mode: 'POW', difficulty: 1000 } });
    expect(await redis.exists(ordering.keys.claim('p', 'u'))).toBe(0);
    expect(await gate.check('p', 'u', 'tok2', 5000, P0, true, true)).toMatchObject({ kind: 'new', claimed: true });
    // OFF: the claim as always, solution or not
    await apply(created('o'));
    expect(await gate.check('o', 'u', 'tok3', 5000, P0, true, false)).toMatchObject({
      kind: 'new',
      claimed: true,
      challenge: { mode: 'OFF' },
    });
  });

  it('spends a solution once, under the campaign’s hash tag, until its TTL', async () => {
    const challenge = 'ab'.repeat(32);
    expect(await gate.spendSolution('p', challenge, 60_000)).toBe(true);
    expect(await gate.spendSolution('p', challenge, 60_000)).toBe(false);
    expect(ordering.keys.solution('p', challenge)).toContain('{c:p}');
    expect(await redis.pttl(ordering.keys.solution('p', challenge))).toBeGreaterThan(50_000);
    // given back when its entry was never appended
    await gate.refundSolution('p', challenge);
    expect(await gate.spendSolution('p', challenge, 60_000)).toBe(true);
  });
});
