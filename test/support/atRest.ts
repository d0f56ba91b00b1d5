import { waitUntil } from './wait.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { logLevel, Kafka } from 'kafkajs';
import type { Config } from '../../src/config.js';
import { createRedis, scanKeys } from '../../projections/redis-ordering/index.js';

/**
 * Everything a suite's stores hold at rest, as text, to look for secrets in (I6): every record of
 * its topics (aborted transactions' too, values and headers), a data-only `pg_dump` of its database
 * (every table), and every value under its Redis prefix, read by type.
 */
export async function storesAtRest(config: Config): Promise<{ kafka: string; postgres: string; redis: string }> {
  const [kafka, postgres, redis] = await Promise.all([rawTopics(config), pgDump(config.DATABASE_URL), redisValues(config)]);
  return { kafka, postgres, redis };
}

async function pgDump(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)('pg_dump', ['--data-only', url], { maxBuffer: 512 * 1024 * 1024 });
  return stdout;
}

async function redisValues(config: Config): Promise<string> {
  const redis = createRedis(config);
  const out: string[] = [];
  try {
    for await (const keys of scanKeys(redis, `${config.REDIS_PREFIX}:*`)) {
      for (const key of keys) {
        const type = await redis.type(key);
        const v =
          type === 'string'
            ? await redis.get(key)
            : type === 'hash'
              ? await redis.hgetall(key)
              : type === 'zset'
                ? await redis.zrange(key, 0, -1, 'WITHSCORES')
                : type === 'set'
                  ? await redis.smembers(key)
                  : type === 'list'
                    ? await redis.lrange(key, 0, -1)
                    : type === 'stream'
                      ? await redis.xrange(key, '-', '+')
                      : `(${type})`;
        out.push(`${key} ${JSON.stringify(v)}`);
      }
    }
  } finally {
    redis.disconnect();
  }
  return out.join('\n');
}

/** Every record of the suite's topics up to their ends, uncommitted and aborted ones included. */
async function rawTopics(config: Config): Promise<string> {
  const kafka = new Kafka({ brokers: config.KAFKA_BROKERS, clientId: 'at-rest', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const out: string[] = [];
  try {
    for (const topic of [config.topics.events, config.topics.parked]) {
      const ends = new Map((await admin.fetchTopicOffsets(topic).catch(() => [])).map((o) => [o.partition, BigInt(o.high)]));
      const pending = new Set([...ends].filter(([, end]) => end > 0n).map(([p]) => p));
      if (pending.size === 0) continue;
      const consumer = kafka.consumer({
        groupId: `at-rest-${Math.random().toString(36).slice(2)}`,
        readUncommitted: true,
        maxWaitTimeInMs: 100,
      });
      const reached = (p: number, last: string) => {
        if (BigInt(last) + 1n >= ends.get(p)!) pending.delete(p);
      };
      consumer.on(consumer.events.END_BATCH_PROCESS, (e) => reached(e.payload.partition, e.payload.lastOffset));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            out.push(m.value?.toString('utf8') ?? '');
            for (const [k, v] of Object.entries(m.headers ?? {})) out.push(`${k}=${String(v)}`);
          }
        },
      });
      await waitUntil(
        async () => pending.size,
        (n) => n === 0,
        { what: `reading ${topic} to its end`, timeoutMs: 60_000, everyMs: 50 },
      );
      await consumer.disconnect();
    }
  } finally {
    await admin.disconnect();
  }
  return out.join('\n');
}
