import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { EVENT_VERSION } from '../../src/domain/events.js';
import { createRedis, RedisOrdering } from '../../src/infra/redis/ordering.js';

/** The ordering's Lua scripts (ioredis defineCommand) against the real Redis. */
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const ordering = new RedisOrdering(redis, `t:lua-${randomBytes(4).toString('hex')}`);

afterAll(async () => {
  const keys = await redis.keys(`${ordering.keys.prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

async function create(id: string, stock: number) {
  const pipe = redis.pipeline();
  ordering.applyTo(pipe, {
    type: 'CampaignCreated', version: EVENT_VERSION, eventId: `created:${id}`, campaignId: id, occurredAt: new Date().toISOString(),
    title: 'T', reward: 'R', stock, opensAt: new Date(0).toISOString(), closesAt: new Date(Date.now() + 60_000).toISOString(),
  }, 0, false);
  await pipe.exec();
}

async function place(id: string, entries: [number, string][]) {
  const pipe = redis.pipeline();
  ordering.queuePlace(pipe, id, entries.map(([o, u]) => ({ offset: BigInt(o), userId: u })));
  const [[err, r]] = (await pipe.exec()) as [[Error | null, (string | number)[]]];
  if (err) throw err;
  return RedisOrdering.parsePlaces(r);
}

describe('place.lua', () => {
  it('places distinct users by their first offset, idempotently', async () => {
    await create('c1', 2);
    expect(await place('c1', [[10, 'a'], [11, 'b'], [12, 'a'], [13, 'c']])).toEqual([
      { rank: 0, firstOffset: 10n },
      { rank: 1, firstOffset: 11n },
      { rank: 0, firstOffset: 10n },
      { rank: 2, firstOffset: 13n },
    ]);
    // the same batch again (a decider restarted mid-batch): the same places
    expect(await place('c1', [[11, 'b'], [13, 'c']])).toEqual([
      { rank: 1, firstOffset: 11n },
      { rank: 2, firstOffset: 13n },
    ]);
    const entry = await ordering.entry('c1', 'c');
    expect(entry).toMatchObject({ ticket: '0-13', position: 3, stock: 2 });
  });

  it('asks for a rebuild when the campaign is gone, even if a stray fact recreated part of its meta', async () => {
    await create('c2', 5);
    await redis.del(ordering.keys.meta('c2'), ordering.keys.line('c2'));
    expect(await place('c2', [[1, 'a']])).toBe('REBUILD');
    const pipe = redis.pipeline();
    ordering.applyTo(pipe, { type: 'EntrantRegistered', version: EVENT_VERSION, eventId: 'e', campaignId: 'c2', occurredAt: new Date().toISOString(), userId: 'a' }, 0, false);
    await pipe.exec();
    expect(await redis.exists(ordering.keys.meta('c2'))).toBe(0);
    expect(await place('c2', [[1, 'a']])).toBe('REBUILD');
  });
});

describe('lookup.lua', () => {
  const BUILT = ordering.keys.built('topic', 0);
  it('counts the request, tells new from placed and pending users, and claims once', async () => {
    await create('c3', 1);
    const first = await ordering.lookup('c3', 'a', 'req-1', 5000, BUILT);
    expect(first[0]).toBe('NEW');
    expect(first[7]).toBe(1); // claimed
    expect((await ordering.lookup('c3', 'a', 'req-2', 5000, BUILT))[7]).toBe(0); // a second click waits for the first
    await ordering.markPending('c3', 'a', '0-5');
    expect(await ordering.lookup('c3', 'a', 'req-3', 5000, BUILT)).toEqual(['PENDING', '0-5', '1']);
    await place('c3', [[5, 'a']]);
    expect(await ordering.lookup('c3', 'a', 'req-4', 5000, BUILT)).toEqual(['PLACED', '5', 0, '1', '0']);
    const late = await ordering.lookup('c3', 'b', 'req-5', 5000, BUILT);
    expect(late[0]).toBe('NEW');
    expect(late[5]).toBe(1); // taken = 1 = stock
    expect(late[7]).toBe(0); // nothing left to claim for
    expect((await ordering.meta('c3'))!.requests).toBe(5);
    // the same call asking again after a wait on another click's claim is not a new request
    expect((await ordering.lookup('c3', 'b', 'req-5', 5000, BUILT, false))[0]).toBe('NEW');
    expect((await ordering.meta('c3'))!.requests).toBe(5);
    // an unknown campaign, told apart from one being rebuilt by the partition's sentinel, read at once
    expect(await ordering.lookup('nope', 'a', 'r', 5000, BUILT)).toEqual(['NOMETA', 0]);
    await redis.set(BUILT, '1');
    expect(await ordering.lookup('nope', 'a', 'r', 5000, BUILT)).toEqual(['NOMETA', 1]);
  });
});
