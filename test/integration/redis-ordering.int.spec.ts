import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import {
  confirmAbsent,
  createRedis,
  deletePartition,
  EnterGate,
  Keys,
  RedisCampaignLines,
  RedisOrdering,
  RedisWipeSignal,
} from '../../projections/redis-ordering/index.js';
import { elapse } from '../support/wait.js';

/** The ordering's Lua scripts (ioredis defineCommand) against the real Redis, through the folder's adapters. */
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const ordering = new RedisOrdering(redis, `t:lua-${randomBytes(4).toString('hex')}`);
const lines = new RedisCampaignLines(ordering, 'topic', pino({ level: 'silent' }));
const gate = new EnterGate(ordering);
const k: Keys = ordering.keys;
const P0 = { topic: 'topic', partition: 0 };

afterAll(async () => {
  const keys = await redis.keys(k.all());
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

const createdEvent = (id: string, stock: number): CampaignEvent => ({
  type: 'CampaignCreated',
  version: EVENT_VERSION,
  eventId: `created:${id}`,
  campaignId: id,
  occurredAt: new Date().toISOString(),
  title: 'T',
  reward: 'R',
  stock,
  opensAt: new Date(0).toISOString(),
  closesAt: new Date(Date.now() + 60_000).toISOString(),
});

async function create(id: string, stock: number) {
  expect(await lines.place(0, { facts: [{ event: createdEvent(id, stock), replaying: false }], lines: [] })).toEqual([]);
}

async function place(id: string, entries: [number, string][]) {
  const r = await lines.place(0, {
    facts: [],
    lines: [{ campaignId: id, entries: entries.map(([o, u]) => ({ offset: BigInt(o), userId: u, rejection: null })) }],
  });
  return r === 'REBUILD' ? r : r[0]!.map((a) => (a.kind === 'placed' ? { rank: a.rank, firstOffset: a.firstOffset } : a));
}

describe('place.lua', () => {
  it('finds a campaign that lost its last writes (a failover): nothing is placed on it, it reads as building, its partition is unbuilt', async () => {
    await create('lw', 5);
    await redis.set(k.built('topic', 0), 'token');
    const before = await redis.dumpBuffer(k.meta('lw'));
    const lineBefore = await redis.dumpBuffer(k.line('lw')).then(
      (b) => b,
      () => null,
    );
    expect(
      await place('lw', [
        [1, 'a'],
        [2, 'b'],
      ]),
    ).toEqual([
      { rank: 0, firstOffset: 1n },
      { rank: 1, firstOffset: 2n },
    ]);
    expect(await ordering.entry('lw', 'b', P0)).toMatchObject({ ticket: '0-2', position: 2 });
    // the lost tail: the meta as it was before the places, the line gone with them
    await redis.restore(k.meta('lw'), 0, before, 'REPLACE');
    if (lineBefore) await redis.restore(k.line('lw'), 0, lineBefore, 'REPLACE');
    else await redis.del(k.line('lw'));
    // a reader is told to wait, never that b has no entry
    expect(await ordering.entry('lw', 'b', P0)).toBe('building');
    expect(await gate.check('lw', 'b', 'tok', 1000, P0, true)).toEqual({ kind: 'building' });
    // the writer's next step on it asks for a rebuild and places nothing
    expect(await place('lw', [[3, 'c']])).toBe('REBUILD');
    expect(await redis.zcard(k.line('lw'))).toBe(0);
    expect(await redis.hget(k.meta('lw'), 'building')).toBe('1');
    expect(await ordering.isBuilt(P0)).toBe(false);
  });

  it('places distinct users by their first offset, idempotently', async () => {
    await create('c1', 2);
    expect(
      await place('c1', [
        [10, 'a'],
        [11, 'b'],
        [12, 'a'],
        [13, 'c'],
      ]),
    ).toEqual([
      { rank: 0, firstOffset: 10n },
      { rank: 1, firstOffset: 11n },
      { rank: 0, firstOffset: 10n },
      { rank: 2, firstOffset: 13n },
    ]);
    // the same batch again (a writer restarted mid-batch): the same places
    expect(
      await place('c1', [
        [11, 'b'],
        [13, 'c'],
      ]),
    ).toEqual([
      { rank: 1, firstOffset: 11n },
      { rank: 2, firstOffset: 13n },
    ]);
    const entry = await ordering.entry('c1', 'c');
    expect(entry).toMatchObject({ ticket: '0-13', position: 3, stock: 2 });
  });

  it('asks for a rebuild when the campaign is gone, even if a stray fact recreated part of its meta', async () => {
    await create('c2', 5);
    await redis.del(k.meta('c2'), k.line('c2'));
    expect(await place('c2', [[1, 'a']])).toBe('REBUILD');
    const entrant: CampaignEvent = {
      type: 'EntrantRegistered',
      version: EVENT_VERSION,
      eventId: 'e',
      campaignId: 'c2',
      occurredAt: new Date().toISOString(),
      userId: 'a',
    };
    expect(await lines.applyCommitted(0, [entrant])).toBe(true);
    expect(await redis.exists(k.meta('c2'))).toBe(0);
    expect(await place('c2', [[1, 'a']])).toBe('REBUILD');
  });
});

describe('lookup.lua', () => {
  it('counts the request, tells new from placed and pending users, and claims once', async () => {
    await create('c3', 1);
    const first = await gate.check('c3', 'a', 'req-1', 5000, P0, true);
    expect(first).toMatchObject({ kind: 'new', taken: 0, claimed: true, terms: { stock: 1, closedAt: null } });
    expect(await gate.check('c3', 'a', 'req-2', 5000, P0, true)).toMatchObject({ kind: 'new', claimed: false }); // a second click waits for the first
    await gate.markPending('c3', 'a', '0-5');
    expect(await gate.check('c3', 'a', 'req-3', 5000, P0, true)).toEqual({ kind: 'pending', ticket: '0-5', stock: 1 });
    await place('c3', [[5, 'a']]);
    expect(await gate.check('c3', 'a', 'req-4', 5000, P0, true)).toEqual({ kind: 'placed', ticket: '0-5', position: 1, stock: 1 });
    // taken = 1 = stock: nothing left to claim for
    expect(await gate.check('c3', 'b', 'req-5', 5000, P0, true)).toMatchObject({ kind: 'new', taken: 1, claimed: false });
    expect((await ordering.meta('c3'))!.requests).toBe(5);
    // the same call asking again after a wait on another click's claim is not a new request
    expect((await gate.check('c3', 'b', 'req-5', 5000, P0, false)).kind).toBe('new');
    expect((await ordering.meta('c3'))!.requests).toBe(5);
  });

  it('tells an unknown campaign from one whose partition is being rebuilt', async () => {
    expect(await gate.check('nope', 'a', 'r', 5000, P0, true)).toEqual({ kind: 'building' });
    await lines.markBuilt(0);
    expect(await gate.check('nope', 'a', 'r', 5000, P0, true)).toEqual({ kind: 'unknown' });
  });
});

describe('mark.lua', () => {
  it("marks the tickets of one turn's appends, across campaigns, lets their claims go and keeps a ticket already pending", async () => {
    await create('m1', 10);
    await create('m2', 10);
    for (const [c, u] of [
      ['m1', 'a'],
      ['m1', 'b'],
      ['m2', 'a'],
    ] as const) {
      expect(await gate.check(c, u, `tok-${c}-${u}`, 60_000, P0, true)).toMatchObject({ kind: 'new', claimed: true });
    }
    await redis.hset(k.pending('m1'), 'c', '0-1');
    await Promise.all([
      gate.markPending('m1', 'a', '0-7'),
      gate.markPending('m2', 'a', '0-8'),
      gate.markPending('m1', 'b', '0-9'),
      gate.markPending('m1', 'c', '0-10'),
    ]);
    expect(await redis.hgetall(k.pending('m1'))).toEqual({ a: '0-7', b: '0-9', c: '0-1' });
    expect(await redis.hgetall(k.pending('m2'))).toEqual({ a: '0-8' });
    expect(await redis.exists(k.claim('m1', 'a'), k.claim('m1', 'b'), k.claim('m2', 'a'))).toBe(0);
  });
});

describe("the writer's step count", () => {
  it('is read once for the calls made while a read of it is on its way, and read again by a call made after', async () => {
    const P3 = { topic: 'topic', partition: 3 };
    await redis.hset(k.seqs('topic', 3), 'sc', '7');
    const hget = vi.spyOn(redis, 'hget');
    try {
      expect(await Promise.all(Array.from({ length: 20 }, () => ordering.writerSeq('sc', P3)))).toEqual(Array(20).fill(7));
      expect(hget).toHaveBeenCalledTimes(1);
      // another campaign of the partition is a read of its own
      expect(await Promise.all([ordering.writerSeq('sc', P3), ordering.writerSeq('other', P3)])).toEqual([7, 0]);
      expect(hget).toHaveBeenCalledTimes(3);
      await redis.hset(k.seqs('topic', 3), 'sc', '8');
      expect(await ordering.writerSeq('sc', P3)).toBe(8);
    } finally {
      hget.mockRestore();
    }
  });
});

describe("the gate and the writer's step count", () => {
  it('on one Redis reads the count in its own lookup (one call, no HGET), and a campaign below it is building', async () => {
    await create('gs', 5);
    const seq = Number(await redis.hget(k.meta('gs'), 'seq'));
    expect(seq).toBeGreaterThan(0);
    const hget = vi.spyOn(redis, 'hget');
    const lookup = vi.spyOn(redis, 'fcLookupWithSeq');
    try {
      await redis.hset(k.seqs('topic', 0), 'gs', String(seq));
      expect(await gate.check('gs', 'a', 'tok-a', 1000, P0, true)).toMatchObject({ kind: 'new', claimed: true });
      // calls made on the client itself (with auto-pipelining ioredis calls the command again on its pipeline)
      expect(lookup.mock.contexts.filter((c) => c === redis)).toHaveLength(1);
      expect(hget).not.toHaveBeenCalled();
      // the writer published a step the campaign does not show: writes lost, nobody is answered from it
      await redis.hset(k.seqs('topic', 0), 'gs', String(seq + 1));
      expect(await gate.check('gs', 'b', 'tok-b', 1000, P0, true)).toEqual({ kind: 'building' });
      // nor counted, nor claimed
      expect(await redis.hget(k.meta('gs'), 'requests')).toBe('1');
      expect(await redis.exists(k.claim('gs', 'b'))).toBe(0);
      // a campaign the partition's counts do not name is not held back
      await redis.hdel(k.seqs('topic', 0), 'gs');
      expect(await gate.check('gs', 'b', 'tok-b', 1000, P0, true)).toMatchObject({ kind: 'new', claimed: true });
    } finally {
      hget.mockRestore();
      lookup.mockRestore();
    }
  });
});

describe('the rebuild protocol', () => {
  const P1 = { topic: 'topic', partition: 1 };

  it('reads a campaign wiped by a replay as building, never unknown, though its partition is built', async () => {
    await lines.markBuilt(1);
    await create('w1', 2);
    await place('w1', [[1, 'a']]);
    expect(await deletePartition(ordering, P1, 'job-1', ['w1'], 60)).toBe('DELETED');
    await lines.markBuilt(1); // a rebuild that ended before the wipe (it then runs again: the sentinel goes once more)
    expect(await gate.check('w1', 'b', 'r', 5000, P1, true)).toEqual({ kind: 'building' });
    expect(await ordering.campaign('w1', P1)).toBe('building');
    expect(await ordering.entry('w1', 'a', P1)).toBe('building');
    // the writer's rebuild re-creates it (building), and only then finishes
    expect(await lines.place(1, { facts: [{ event: createdEvent('w1', 2), replaying: true }], lines: [] })).toEqual([]);
    expect(await ordering.campaign('w1', P1)).toBe('building');
    expect(await lines.finishRebuild(1, ['w1'])).toBe(true);
    expect(await ordering.campaign('w1', P1)).toMatchObject({ id: 'w1', entrants: 0 });
  });

  it("tells the partition's writer of a replay's wipe as it happens, and no other partition's", async () => {
    const heard: number[] = [];
    const stop = await new RedisWipeSignal(ordering, 'topic').listen([0, 1, 2], (p) => heard.push(p));
    try {
      await lines.markBuilt(2);
      await create('w3', 2);
      expect(await deletePartition(ordering, { topic: 'topic', partition: 2 }, 'job-3', ['w3'], 60)).toBe('DELETED');
      await expect.poll(() => heard, { timeout: 2000 }).toEqual([2]);
      // the same job's step again deletes nothing, and says nothing
      expect(await deletePartition(ordering, { topic: 'topic', partition: 2 }, 'job-3', ['w3'], 60)).toBe('DONE');
      await elapse(100, 'a wipe signal for the second step would have come by now');
      expect(heard).toEqual([2]);
    } finally {
      await stop();
    }
  });

  it('does not finish a rebuild over a campaign lost meanwhile, and leaves the partition unbuilt', async () => {
    await create('w2', 2);
    await redis.del(k.meta('w2')); // flushed after the rebuild re-created it
    await redis.del(k.built('topic', 1));
    expect(await lines.finishRebuild(1, ['w2'])).toBe(false);
    expect(await lines.isBuilt(1)).toBe(false);
    expect(await gate.check('w2', 'a', 'r', 5000, P1, true)).toEqual({ kind: 'building' });
  });

  it('calls a campaign unknown only under a built partition, whose sentinel is new with every build', async () => {
    await lines.markBuilt(1);
    expect(await confirmAbsent(ordering, P1, 'never')).toBe('unknown');
    // a new build between the looks (a flush and a rebuild) makes the first look worthless
    const before = await redis.get(k.built('topic', 1));
    await lines.markBuilt(1);
    expect(await redis.get(k.built('topic', 1))).not.toBe(before);
  });
});
