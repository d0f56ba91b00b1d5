import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config.js';
import { forwardingReporter } from '../health.js';
import { createKafka } from '../infra/kafka/client.js';
import { Parking } from '../infra/kafka/parking.js';
import { createPrisma } from '../infra/prisma/client.js';
import { createRedis, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { assembleWriter } from './assemble.js';
import { WRITER, type SingleWriter } from './singleWriter.js';

/**
 * The single writer on an event loop of its own, for a process that also serves the API. Under load the
 * API's loop lags by ~10-15 ms; a Kafka transaction takes about nine round trips, each of which
 * waited that long, so the writer's cycle (and every caller's wait) grew to ~100 ms. Here it keeps
 * its own pace. It reports to the main thread: assigned, its counters, its stage timings and its
 * health (a part failing with its error, or ok again; only changes are sent).
 */
export type FromWriter =
  | { type: 'assigned' }
  | {
      type: 'stats';
      stats: SingleWriter['stats'];
      timings: [Parameters<SingleWriter['timing']>[0], number, number | undefined][];
      /** records parked by the writer */
      parked: number;
    }
  | { type: 'health'; part: string; error: string | null }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

const port = parentPort!;
const { config, instance, logTag } = workerData as { config: Config; instance: string; logTag: string };
const send = (m: FromWriter) => port.postMessage(m);

const redis = createRedis(config);
const kafka = createKafka(config, `firstcome-${instance}-writer`);
const parking = await Parking.connect(kafka, config);
// the rebuild bound reads two rows' worth of the read model, rarely: one connection is enough
const prisma = createPrisma(config.DATABASE_URL, { poolSize: 1 });
const assembled = assembleWriter({ kafka, ordering: new RedisOrdering(redis, config.REDIS_PREFIX, logTag), prisma, config, parking });
const { writer } = assembled;
const timings: [Parameters<SingleWriter['timing']>[0], number, number | undefined][] = [];
writer.timing = (stage, seconds, size) => void timings.push([stage, seconds, size]);
writer.health = forwardingReporter((part, error) => send({ type: 'health', part, error }));
const report = setInterval(
  () => send({ type: 'stats', stats: { ...writer.stats }, timings: timings.splice(0), parked: parking.counts.get(WRITER) ?? 0 }),
  500,
);

port.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearInterval(report);
  void assembled.stop().finally(async () => {
    await parking.close().catch(() => undefined);
    await prisma.$disconnect().catch(() => undefined);
    redis.disconnect();
    send({ type: 'stopped' });
  });
});

try {
  await writer.start();
  void writer.ready().then(() => send({ type: 'assigned' }));
} catch (err) {
  send({ type: 'failed', message: (err as Error).message });
}
