import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { Keys } from '../../projections/redis-ordering/keys.js';
import { hashTagOf } from '../../projections/redis-ordering/slots.js';

describe('REDIS_CLUSTER_NODES', () => {
  it('is unset by default, and then REDIS_URL names the one Redis', () => {
    const c = loadConfig({});
    expect(c.REDIS_CLUSTER_NODES).toBeUndefined();
    expect(c.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(loadConfig({ REDIS_CLUSTER_NODES: '' }).REDIS_CLUSTER_NODES).toBeUndefined();
  });

  it('reads host:port seed nodes as a list', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001,[::1]:7002' }).REDIS_CLUSTER_NODES).toEqual([
      '10.0.0.1:7000',
      'redis-b:7001',
      '[::1]:7002',
    ]);
  });

  it('names the variable when an entry is not host:port', () => {
    for (const bad of ['redis://a:7000', 'a', 'a:', 'a:70000', ',']) {
      expect(() => loadConfig({ REDIS_CLUSTER_NODES: bad }), bad).toThrow(ConfigError);
      expect(() => loadConfig({ REDIS_CLUSTER_NODES: bad }), bad).toThrow(/REDIS_CLUSTER_NODES/);
    }
  });
});

describe('the hash slot of a key', () => {
  it('is picked by its first non-empty {tag}, else by the whole key, as Redis Cluster does', () => {
    expect(hashTagOf(new Keys('fc').meta('drop-1'))).toBe('c:drop-1');
    expect(hashTagOf('fc:{}:x{y}')).toBe('fc:{}:x{y}');
    expect(hashTagOf('fc:campaigns')).toBe('fc:campaigns');
    expect(hashTagOf('a{b}{c}')).toBe('b');
  });

  it('is one per campaign for every key and channel of it, and one per partition for its rebuild keys', () => {
    const k = new Keys('fc');
    const campaign = [k.meta('x'), k.line('x'), k.pending('x'), k.won('x'), k.gifts('x'), k.claim('x', 'u'), k.carry('x'), k.changes('x')];
    expect(new Set(campaign.map(hashTagOf))).toEqual(new Set(['c:x']));
    const partition = [k.built('t', 3), k.rebuild('t', 3), k.replayMarker('t', 3, 'job')];
    expect(new Set(partition.map(hashTagOf))).toEqual(new Set(['p:t:3']));
  });
});

describe('a Redis error', () => {
  it('is retryable (UNAVAILABLE) when Redis could not answer now, and not when the command itself was wrong', async () => {
    const { isRedisUnavailable } = await import('../../projections/redis-ordering/client.js');
    // as ioredis hands them over: a ReplyError carrying Redis's own message
    const ReplyError = class extends Error {
      override name = 'ReplyError';
    };
    for (const m of [
      'MOVED 6750 127.0.0.1:17005',
      'ASK 12 127.0.0.1:17001',
      'CLUSTERDOWN The cluster is down',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'Connection is closed.',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      'connect ECONNREFUSED 127.0.0.1:17001',
    ])
      expect(isRedisUnavailable(new ReplyError(m)), m).toBe(true);
    for (const m of [
      'ERR wrong number of arguments',
      'WRONGTYPE Operation against a key holding the wrong kind of value',
      'NOSCRIPT No matching script',
      'ERR Error running script: MOVED inside',
    ])
      expect(isRedisUnavailable(new ReplyError(m)), m).toBe(false);
    expect(isRedisUnavailable('MOVED 1 a:1')).toBe(false);
  });
});
