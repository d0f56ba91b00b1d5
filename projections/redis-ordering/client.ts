import { readFileSync } from 'node:fs';
import { Redis, type Result } from 'ioredis';

/**
 * The Redis client of the ordering projection, with its Lua scripts (lua/*.lua) defined as
 * commands: ioredis sends EVALSHA and falls back to EVAL once after a SCRIPT FLUSH or a restart.
 * Every script touches the keys of one hash slot only (one campaign, or one partition's rebuild
 * keys), so under Redis Cluster each runs on one node.
 */

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

type Reply = (string | number)[];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fcLookup(meta: string, line: string, pending: string, claim: string, userId: string, token: string, ttlMs: number, count: '0' | '1', writerSeq: string): Result<Reply, Context>;
    fcPlace(meta: string, line: string, pending: string, ...args: string[]): Result<Reply, Context>;
    fcFoldCarry(meta: string, carry: string): Result<number, Context>;
    fcReplayStart(built: string, rebuild: string, marker: string, ttlS: string): Result<string, Context>;
    fcWipe(meta: string, line: string, won: string, gifts: string, carry: string): Result<number, Context>;
    fcUnmark(meta: string): Result<number, Context>;
  }
  interface ChainableCommander {
    fcMetaFact(meta: string, expectedSeq: string, field: string, value: string): ChainableCommander;
    fcCreate(meta: string, expectedSeq: string, ...fieldsAndValues: string[]): ChainableCommander;
    fcBump(meta: string, expectedSeq: string): ChainableCommander;
    fcRepair(meta: string): ChainableCommander;
    fcPlace(meta: string, line: string, pending: string, ...args: string[]): ChainableCommander;
    fcFinish(meta: string): ChainableCommander;
  }
}

export function createRedis(url: string, opts: { lazy?: boolean } = {}): Redis {
  const redis = new Redis(url, { lazyConnect: opts.lazy ?? false, maxRetriesPerRequest: 3, enableAutoPipelining: true });
  redis.defineCommand('fcLookup', { numberOfKeys: 4, lua: lua('lookup') });
  redis.defineCommand('fcPlace', { numberOfKeys: 3, lua: lua('place') });
  redis.defineCommand('fcMetaFact', { numberOfKeys: 1, lua: lua('metaFact') });
  redis.defineCommand('fcCreate', { numberOfKeys: 1, lua: lua('create') });
  redis.defineCommand('fcFoldCarry', { numberOfKeys: 2, lua: lua('foldCarry') });
  redis.defineCommand('fcFinish', { numberOfKeys: 1, lua: lua('finish') });
  redis.defineCommand('fcReplayStart', { numberOfKeys: 3, lua: lua('replayStart') });
  redis.defineCommand('fcWipe', { numberOfKeys: 5, lua: lua('wipe') });
  redis.defineCommand('fcUnmark', { numberOfKeys: 1, lua: lua('unmark') });
  redis.defineCommand('fcBump', { numberOfKeys: 1, lua: lua('bump') });
  redis.defineCommand('fcRepair', { numberOfKeys: 1, lua: lua('repair') });
  return redis;
}
