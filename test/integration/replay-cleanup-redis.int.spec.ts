import { afterAll, describe, expect, it } from 'vitest';
import { runCleanup } from '../../batch/cleanup.js';
import type { JobContext } from '../../batch/runtime.js';
import type { Config } from '../../src/config.js';
import { createRedis, deletePartition, foldCarry, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { logger } from '../../src/logger.js';

const log = logger.child({ test: 'replay-cleanup-redis.int' });

describe('batch: Redis steps of replay and cleanup', () => {
  const prefix = `t:batch-lua-${process.pid}-${Date.now()}`;
  const redis = createRedis('redis://127.0.0.1:6379');
  const ordering = new RedisOrdering(redis, prefix);
  const k = ordering.keys;
  const topic = 'lua.campaign-events';
  const run = (jobId: string, ids: string[]) => deletePartition(ordering, { topic, partition: 0 }, jobId, ids, 60);

  afterAll(async () => {
    const keys = await redis.keys(k.all());
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('waits while a rebuild is under way, deletes once, carries the request counter, and folds it back once rebuilt', async () => {
    await redis.hset(k.meta('c1'), { id: 'c1', stock: '3', requests: '41' });
    await redis.zadd(k.line('c1'), 10, 'u1');
    await redis.hset(k.won('c1'), 'u1', '1|t');
    await redis.hset(k.gifts('c1'), 'u1', '{}');
    await redis.hset(k.pending('c1'), 'u9', '0-99');

    expect(await run('job-a', ['c1'])).toBe('BUSY'); // no sentinel: the partition is being rebuilt
    await redis.set(k.built(topic, 0), '1');
    await redis.set(k.rebuild(topic, 0), '{"next":"1","until":"9"}');
    expect(await run('job-a', ['c1'])).toBe('BUSY'); // a rebuild in progress
    await redis.del(k.rebuild(topic, 0));

    expect(await run('job-a', ['c1'])).toBe('DELETED');
    expect(await redis.exists(k.line('c1'), k.won('c1'), k.gifts('c1'), k.built(topic, 0))).toBe(0);
    expect(await redis.hgetall(k.meta('c1'))).toEqual({ building: '1' }); // read as UNAVAILABLE until rebuilt
    expect(await redis.hget(k.pending('c1'), 'u9')).toBe('0-99'); // the API's, kept
    expect(await redis.get(k.carry('c1'))).toBe('41');

    // the writer rebuilt it and new requests came in: the same job deletes nothing again
    await redis.set(k.built(topic, 0), '1');
    await redis.hset(k.meta('c1'), { id: 'c1', stock: '3', building: '1', requests: '2' });
    expect(await run('job-a', ['c1'])).toBe('DONE');
    expect(await foldCarry(ordering, 'c1')).toBe(-1); // still building
    await redis.hdel(k.meta('c1'), 'building');
    expect(await foldCarry(ordering, 'c1')).toBe(41);
    expect(await foldCarry(ordering, 'c1')).toBe(0);
    expect(await redis.hget(k.meta('c1'), 'requests')).toBe('43');
  });

  it('a job that died half way through a partition wipes it again, and deletes the sentinel a rebuild set meanwhile', async () => {
    await redis.hset(k.meta('c2'), { id: 'c2', stock: '3', requests: '5' });
    await redis.zadd(k.line('c2'), 10, 'u1');
    await redis.set(k.built(topic, 0), 'build-1');
    // the job's first run set its marker, deleted the sentinel and died; a rebuild finished since
    await redis.set(k.replayMarker(topic, 0, 'job-b'), 'wiping');
    expect(await run('job-b', ['c2'])).toBe('DELETED');
    expect(await redis.hgetall(k.meta('c2'))).toEqual({ building: '1' });
    expect(await redis.exists(k.line('c2'), k.built(topic, 0))).toBe(0);
    expect(await redis.get(k.carry('c2'))).toBe('5');
    expect(await run('job-b', ['c2'])).toBe('DONE');
  });

  it('cleanup removes every key of campaigns closed longer than the retention, and nothing else', async () => {
    const hour = 3_600_000;
    const now = Date.now();
    const meta = (id: string, closesAt: number, closedAt?: number) =>
      redis.hset(k.meta(id), {
        id,
        stock: '1',
        opensAt: String(now - 10 * hour),
        closesAt: String(closesAt),
        partition: '0',
        ...(closedAt ? { closedAt: String(closedAt) } : {}),
      });
    await meta('old', now + hour, now - 3 * hour); // closed early, 3 h ago
    await meta('ended', now - 3 * hour); // past closesAt 3 h ago
    await meta('recent', now - 1 * hour); // closed 1 h ago: within the retention
    await meta('open', now + hour);
    for (const id of ['old', 'ended', 'recent', 'open']) {
      await redis.zadd(k.line(id), 1, 'u1');
      await redis.zadd(k.campaigns(), now, id);
    }
    await redis.set(k.claim('old', 'u2'), 'x');
    await redis.set(k.built(topic, 0), '1');
    const config = { topics: { events: topic }, REDIS_RETENTION_HOURS: 2 } as unknown as Config;
    const ctx = {
      id: 'c',
      data: {},
      signal: new AbortController().signal,
      log,
      save: async () => undefined,
      progress: async () => undefined,
      sleep: async () => undefined,
      check: () => undefined,
      note: () => undefined,
    };

    const r = await runCleanup(ctx as JobContext<Record<string, never>>, { config, ordering });
    expect(r.removed.sort()).toEqual(['ended', 'old']);
    expect(await redis.keys(k.pattern('old'))).toEqual([]);
    expect(await redis.keys(k.pattern('ended'))).toEqual([]);
    expect(await redis.exists(k.meta('recent'), k.line('recent'), k.meta('open'), k.line('open'))).toBe(4);
    expect((await redis.zrange(k.campaigns(), 0, -1)).sort()).toEqual(['open', 'recent']);

    // while its partition is being rebuilt, a campaign is left alone
    await meta('old', now + hour, now - 3 * hour);
    await redis.zadd(k.campaigns(), now, 'old');
    await redis.del(k.built(topic, 0));
    expect((await runCleanup(ctx as JobContext<Record<string, never>>, { config, ordering })).removed).toEqual([]);
    expect(await redis.exists(k.meta('old'))).toBe(1);
    await redis.set(k.built(topic, 0), '1');

    // an INVENTORY campaign whose winners still wait for codes stays: loadCodes and the writer need it
    await redis.hset(k.meta('short'), {
      id: 'short',
      stock: '3',
      opensAt: String(now - 10 * hour),
      closesAt: String(now - 3 * hour),
      partition: '0',
      issuance: 'INVENTORY',
    });
    await redis.zadd(k.campaigns(), now, 'short');
    await redis.zadd(k.line('short'), 1, 'u1', 2, 'u2');
    await redis.hset(k.won('short'), 'u1', '1|t', 'u2', '2|t');
    await redis.hset(k.gifts('short'), 'u1', '{}');
    expect((await runCleanup(ctx as JobContext<Record<string, never>>, { config, ordering })).removed).toEqual(['old']);
    expect(await redis.exists(k.meta('short'), k.won('short'), k.gifts('short'))).toBe(3);
    // once every winner holds a code, it goes as any other
    await redis.hset(k.gifts('short'), 'u2', '{}');
    expect((await runCleanup(ctx as JobContext<Record<string, never>>, { config, ordering })).removed).toEqual(['short']);
    expect(await redis.keys(k.pattern('short'))).toEqual([]);
  });
});
