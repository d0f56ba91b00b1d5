import { readFileSync } from 'node:fs';
import { Redis, type ChainableCommander, type Result } from 'ioredis';

/**
 * The Redis client of the ordering projection, with its Lua scripts (lua/*.lua) defined as
 * commands: ioredis sends EVALSHA and falls back to EVAL once after a SCRIPT FLUSH or a restart.
 */

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

type Reply = (string | number)[];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fcLookup(meta: string, line: string, pending: string, claim: string, built: string, userId: string, token: string, ttlMs: number, count: '0' | '1'): Result<Reply, Context>;
    fcPlace(meta: string, line: string, pending: string, ...args: string[]): Result<Reply, Context>;
    fcFoldCarry(meta: string, carry: string): Result<number, Context>;
    fcDeletePartition(numKeys: number, ...keysAndArgs: string[]): Result<string, Context>;
  }
  interface ChainableCommander {
    fcMetaFact(meta: string, field: string, value: string): ChainableCommander;
    fcCreate(meta: string, ...fieldsAndValues: string[]): ChainableCommander;
    fcPlace(meta: string, line: string, pending: string, ...args: string[]): ChainableCommander;
  }
}

export function createRedis(url: string, opts: { lazy?: boolean } = {}): Redis {
  const redis = new Redis(url, { lazyConnect: opts.lazy ?? false, maxRetriesPerRequest: 3, enableAutoPipelining: true });
  redis.defineCommand('fcLookup', { numberOfKeys: 5, lua: lua('lookup') });
  redis.defineCommand('fcPlace', { numberOfKeys: 3, lua: lua('place') });
  redis.defineCommand('fcMetaFact', { numberOfKeys: 1, lua: lua('metaFact') });
  redis.defineCommand('fcCreate', { numberOfKeys: 1, lua: lua('create') });
  redis.defineCommand('fcFoldCarry', { numberOfKeys: 2, lua: lua('foldCarry') });
  // the number of keys varies with the campaigns of the partition: given first, as with EVAL
  redis.defineCommand('fcDeletePartition', { lua: lua('deletePartition') });
  return redis;
}
