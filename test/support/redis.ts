import { Redis } from 'ioredis';
import type { Config } from '../../src/config.js';
import { Keys } from '../../projections/redis-ordering/index.js';

/** Every key of the suite's REDIS_PREFIX, in one command: as sudden as a flush (never FLUSHALL: other suites share the server). */
export async function loseRedis(config: Pick<Config, 'REDIS_URL' | 'REDIS_PREFIX'>): Promise<number> {
  const redis = new Redis(config.REDIS_URL);
  try {
    const keys = await redis.keys(new Keys(config.REDIS_PREFIX).all());
    return keys.length ? await redis.del(...keys) : 0;
  } finally {
    redis.disconnect();
  }
}
