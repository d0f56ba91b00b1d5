import { readFileSync } from 'node:fs';
import { Cluster, Redis, type Result } from 'ioredis';

/**
 * The Redis client of the ordering projection, with its Lua scripts (lua/*.lua) defined as
 * commands: ioredis sends EVALSHA and falls back to EVAL once after a SCRIPT FLUSH or a restart.
 * Every script touches the keys of one hash slot only (one campaign, or one partition's rebuild
 * keys), so under Redis Cluster each runs on one node.
 *
 * `REDIS_CLUSTER_NODES` set: ioredis's Cluster client, which follows MOVED/ASK and, while a
 * primary fails over, retries its commands (`retryDelayOnFailover`) until the replica has taken
 * over or their redirections run out (the caller then sees an error: retryable, never a wrong answer).
 */

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

type Reply = (string | number)[];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fcLookup(
      meta: string,
      line: string,
      pending: string,
      claim: string,
      userId: string,
      token: string,
      ttlMs: number,
      count: '0' | '1',
      writerSeq: string,
      solved: '0' | '1',
    ): Result<Reply, Context>;
    /** lookup.lua reading the writer's step count itself: one Redis, not a cluster (`seqs` is another slot) */
    fcLookupWithSeq(
      meta: string,
      line: string,
      pending: string,
      claim: string,
      seqs: string,
      userId: string,
      token: string,
      ttlMs: number,
      count: '0' | '1',
      campaignId: string,
      solved: '0' | '1',
    ): Result<Reply, Context>;
    fcHoldClaim(claim: string, token: string, ttlMs: number): Result<number, Context>;
    fcPlace(meta: string, line: string, pending: string, ...args: string[]): Result<Reply, Context>;
    fcFoldCarry(meta: string, carry: string): Result<number, Context>;
    fcReplayStart(
      built: string,
      rebuild: string,
      marker: string,
      wiping: string,
      ttlS: string,
      wipingTtlMs: string,
    ): Result<string, Context>;
    fcWipe(meta: string, line: string, won: string, gifts: string, carry: string, ...inventory: string[]): Result<number, Context>;
    fcUnmark(meta: string): Result<number, Context>;
    fcCrowdTurn(meta: string, seqs: string, calls: number, campaignId: string): Result<Reply, Context>;
    fcSocketAcquire(sockets: string, socketId: string, nowMs: number, leaseMs: number, most: number): Result<number, Context>;
  }
  interface ChainableCommander {
    fcMetaFact(meta: string, expectedSeq: string, field: string, value: string): ChainableCommander;
    fcMetaSet(meta: string, expectedSeq: string, ...fieldsAndValues: string[]): ChainableCommander;
    fcCreate(meta: string, expectedSeq: string, ...fieldsAndValues: string[]): ChainableCommander;
    fcBump(meta: string, expectedSeq: string): ChainableCommander;
    /** `pairs`: hash, sealed code of each code of the chunk, one array */
    fcLoadCodes(
      meta: string,
      codes: string,
      hashes: string,
      chunks: string,
      expectedSeq: string,
      chunkId: string,
      pairs: string[],
    ): ChainableCommander;
    fcRepair(meta: string): ChainableCommander;
    /** `entries`: offset, user, verdict of each entry, one array (ioredis flattens it) */
    fcPlace(meta: string, line: string, pending: string, expectedSeq: string, entries: string[]): ChainableCommander;
    /** `entries`: n, then n pairs offset, user (admitted), then the users turned away, one array */
    fcReplayLine(meta: string, line: string, pending: string, expectedSeq: string, entries: string[]): ChainableCommander;
    fcFinish(meta: string): ChainableCommander;
    /** `keys`: the pending hash, the meta, the line, then each user's claim; `args`: the change channel, '1' when sharded, the campaign's id, then user, ticket of each */
    fcMark(numberOfKeys: number, keys: string[], args: string[]): ChainableCommander;
  }
}

/** One Redis or a Redis Cluster: what every Redis use of firstcome takes. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: `REDIS_CLUSTER_NODES` when set, else `REDIS_URL`. */
export interface RedisTarget {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: string[] | undefined;
}

export const isCluster = (redis: RedisClient): redis is Cluster => redis instanceof Cluster;

const nodesOf = (hostPorts: readonly string[]) =>
  hostPorts.map((hp) => {
    const at = hp.lastIndexOf(':');
    return { host: hp.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(hp.slice(at + 1)) };
  });

/**
 * A cluster client. Its waits are sized for a failover of a few seconds (cluster-node-timeout plus
 * the replica's election): a command to the lost primary is retried every `retryDelayOnFailover`
 * up to `maxRedirections` times, a CLUSTERDOWN likewise.
 */
function cluster(nodes: readonly string[], lazy: boolean): Cluster {
  return new Cluster(nodesOf(nodes), {
    lazyConnect: lazy,
    enableAutoPipelining: true,
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    maxRedirections: 24,
    slotsRefreshTimeout: 2000,
    redisOptions: { maxRetriesPerRequest: 3, connectTimeout: 2000 },
  });
}

/** The client for the configured Redis; a URL alone names one Redis. */
export function createRedis(target: string, opts?: { lazy?: boolean }): Redis;
export function createRedis(target: RedisTarget, opts?: { lazy?: boolean }): RedisClient;
export function createRedis(target: RedisTarget | string, opts: { lazy?: boolean } = {}): RedisClient {
  const lazy = opts.lazy ?? false;
  const t: RedisTarget = typeof target === 'string' ? { REDIS_URL: target } : target;
  const redis: RedisClient = t.REDIS_CLUSTER_NODES
    ? cluster(t.REDIS_CLUSTER_NODES, lazy)
    : new Redis(t.REDIS_URL, { lazyConnect: lazy, maxRetriesPerRequest: 3, enableAutoPipelining: true });
  redis.defineCommand('fcLookup', { numberOfKeys: 4, lua: lua('lookup') });
  redis.defineCommand('fcLookupWithSeq', { numberOfKeys: 5, lua: lua('lookup') });
  redis.defineCommand('fcHoldClaim', { numberOfKeys: 1, lua: lua('holdClaim') });
  // as many claims as entries: the key count goes first in each call
  redis.defineCommand('fcMark', { lua: lua('mark') });
  redis.defineCommand('fcPlace', { numberOfKeys: 3, lua: lua('place') });
  redis.defineCommand('fcReplayLine', { numberOfKeys: 3, lua: lua('replayLine') });
  redis.defineCommand('fcMetaFact', { numberOfKeys: 1, lua: lua('metaFact') });
  redis.defineCommand('fcMetaSet', { numberOfKeys: 1, lua: lua('metaSet') });
  redis.defineCommand('fcCreate', { numberOfKeys: 1, lua: lua('create') });
  redis.defineCommand('fcFoldCarry', { numberOfKeys: 2, lua: lua('foldCarry') });
  redis.defineCommand('fcFinish', { numberOfKeys: 1, lua: lua('finish') });
  redis.defineCommand('fcReplayStart', { numberOfKeys: 4, lua: lua('replayStart') });
  redis.defineCommand('fcWipe', { numberOfKeys: 9, lua: lua('wipe') });
  redis.defineCommand('fcUnmark', { numberOfKeys: 1, lua: lua('unmark') });
  redis.defineCommand('fcBump', { numberOfKeys: 1, lua: lua('bump') });
  redis.defineCommand('fcLoadCodes', { numberOfKeys: 4, lua: lua('loadCodes') });
  redis.defineCommand('fcRepair', { numberOfKeys: 1, lua: lua('repair') });
  redis.defineCommand('fcCrowdTurn', { numberOfKeys: 2, lua: lua('crowdTurn') });
  redis.defineCommand('fcSocketAcquire', { numberOfKeys: 1, lua: lua('socketAcquire') });
  return redis;
}

/**
 * A connection for subscribing, beside `redis`: on a cluster one with a sharded subscriber per
 * primary (SSUBSCRIBE goes to the primary of the channel's slot and follows it through a failover).
 */
export function createSubscriberOf(redis: RedisClient): RedisClient {
  if (!isCluster(redis)) return redis.duplicate();
  return redis.duplicate([], { lazyConnect: false, enableAutoPipelining: false, shardedSubscribers: true });
}

/**
 * An error that says Redis could not answer now (a connection lost, a primary failing over, the
 * cluster down or resharding), as opposed to a wrong command: the caller may retry. A MOVED that
 * reaches the caller is one of them: ioredis follows a redirection, except inside an automatic
 * pipeline whose commands failed in different ways (seen in a failover); it learns the new map meanwhile.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (['MaxRetriesPerRequestError', 'ClusterAllFailedError'].includes(err.name)) return true;
  return /^(MOVED|ASK) \d+ |Too many Cluster redirections|Connection is closed|Stream isn't writeable|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|READONLY|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Failed to refresh slots cache|None of startup nodes is available|No sharded subscriber/.test(
    err.message,
  );
}
