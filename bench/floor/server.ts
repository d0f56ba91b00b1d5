import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { EnterResult } from '../../src/api/enter.js';
import type { ApiServices } from '../../src/api/resolvers.js';
import { createApollo, createHttpServer } from '../../src/api/server.js';
import { loadConfig } from '../../src/config.js';
import { entrantRegistered, ticketOf } from '../../src/domain/events.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { createRedis, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { PlatformaticAppender } from './platformatic.js';
import { floorClientOf, stepOf, type FloorReply } from './steps.js';

/**
 * The server of bench/floor.ts: the API's real HTTP edge, Apollo server and resolvers, with the write
 * path of `enter` replaced by the rungs of steps.ts. Nothing else runs: no Redis, no read side.
 * `FLOOR_CLIENT` picks the Kafka client of the log path: `kafkajs` (src/infra/kafka, the product's)
 * or `platformatic` (platformatic.ts); topics are made by KafkaJS's admin either way.
 */
const config = loadConfig(process.env);
const client = floorClientOf(process.env.FLOOR_CLIENT);
const kafka = createKafka(config, 'floor');
const admin = kafka.admin();
await admin.connect();
await ensureTopics(admin, config);
await admin.disconnect();
const appender: Pick<EventAppender, 'append' | 'close'> =
  client === 'platformatic' ? new PlatformaticAppender(config) : await EventAppender.connect(kafka, config);

const reader = new Worker(new URL('./reader-entry.mjs', import.meta.url), { workerData: { config, client } });
const waiting = new Map<string, (r: FloorReply | null) => void>();
const readerReady = new Promise<void>((resolve, reject) => {
  reader.on('message', (m: 'ready' | FloorReply[]) => {
    if (m === 'ready') return resolve();
    for (const r of m) waiting.get(r.request)?.(r);
  });
  reader.once('error', reject);
});
await readerReady;

/** The reply of the reader thread, or null at ENTER_WAIT_MS (the entry stays QUEUED, as in the API). */
function expect(request: string): Promise<FloorReply | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => answer(null), config.ENTER_WAIT_MS);
    const answer = (r: FloorReply | null) => {
      clearTimeout(timer);
      waiting.delete(request);
      resolve(r);
    };
    waiting.set(request, answer);
  });
}

const entry = (campaignId: string, userId: string, ticket: string, position: number | null) => ({
  entry: { campaignId, userId, ticket, position, stock: Number.MAX_SAFE_INTEGER, won: null, gifticon: null },
});

async function enter(campaignId: string, userId: string): Promise<EnterResult> {
  const step = stepOf(campaignId);
  if (!step) throw new Error(`not a rung of the floor: ${campaignId}`);
  if (step === 'graphql') return entry(campaignId, userId, '0-0', 1);
  const request = randomUUID();
  const event = entrantRegistered(campaignId, userId, new Date(), { instance: 'floor', request });
  const reply = step === 'append' ? null : expect(request);
  const at = await appender.append(event);
  const ticket = ticketOf(at.partition, at.offset);
  if (!reply) return entry(campaignId, userId, ticket, null);
  const r = await reply;
  return entry(campaignId, userId, ticket, r?.position ?? null);
}

// `enter` is the only field the rungs resolve, and it never reads the ordering projection; the
// edge keeps `enter`'s per-user budget in Redis (the one Redis call of a rung, ENTER_RATE_PER_SEC
// cannot be 0), the floor's env turns the other budgets off
const redis = createRedis(config);
const services: ApiServices = {
  config,
  ordering: new RedisOrdering(redis, config.REDIS_PREFIX),
  appender: appender as EventAppender,
  enter: { enter },
  challenges: { issue: () => Promise.resolve(null) },
};
const endpoint = { apollo: await createApollo(services), services };
const server = createHttpServer(() => endpoint, {
  ready: async () => ({ ok: true, checks: {}, failing: {} }),
  metrics: async () => ({ contentType: 'text/plain', body: '' }),
});
server.listen(config.PORT, '127.0.0.1');
await once(server, 'listening');

process.once('SIGTERM', () => {
  void (async () => {
    await server.drain(2_000);
    await reader.terminate();
    await appender.close();
    redis.disconnect();
    process.exit(0);
  })();
});
