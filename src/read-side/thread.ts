import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config.js';
import { forwardingReporter } from '../health.js';
import { createKafka } from '../infra/kafka/client.js';
import type { LogIdentity } from '../infra/kafka/logIdentity.js';
import { Parking } from '../infra/kafka/parking.js';
import { createPrisma } from '../infra/prisma/client.js';
import { createThreadMetrics } from '../metrics.js';
import { loadReadSide, startReadSide, type ReadSide } from './index.js';

/**
 * The read side on an event loop of its own, for a process that also serves the API. With every
 * role in one process, the consumer host and its processors (fetch and decode of every record,
 * one Prisma transaction per batch, the triggers' checkpoints) took ~20-25% of the API's thread
 * under a burst of fresh entries, when that thread was the bottleneck. Here they use the core the
 * API leaves idle.
 *
 * It reports to the main thread: its readiness when it changes, its processors' health (a part
 * failing with its error, or ok again; only changes are sent), and on request what /metrics shows
 * of it (its registry's text, and the records it parked per consumer for `firstcome_parked_total`).
 */
export type FromReadSide =
  | { type: 'started' }
  | { type: 'ready'; ready: boolean }
  | { type: 'health'; name: string; part: string; error: string | null }
  | { type: 'metrics'; id: number; text: string; parked: [string, number][] }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

/** `start` once the database is prepared: the thread is created before, so its loading overlaps the main thread's start. */
export type ToReadSide = { type: 'start'; logIdentity: LogIdentity } | { type: 'metrics'; id: number } | { type: 'stop' };

const port = parentPort!;
const { config, instance, roles } = workerData as { config: Config; instance: string; roles: string[] };
const send = (m: FromReadSide) => port.postMessage(m);
let start!: (logIdentity: LogIdentity) => void;
const told = new Promise<LogIdentity>((r) => (start = r));
const parts = await loadReadSide(roles);

const kafka = createKafka(config, `firstcome-${instance}-read-side`);
const parking = await Parking.connect(kafka, config);
// the host's batches in flight (4), each in its transaction, and the checkpoint checks beside them
const prisma = createPrisma(config.DATABASE_URL, { poolSize: 6 });
const metrics = createThreadMetrics();
const health = { reporter: (name: string) => forwardingReporter((part, error) => send({ type: 'health', name, part, error })) };

let side: ReadSide | null = null;
let ready = false;
const watch = setInterval(() => {
  const now = side?.ready() ?? false;
  if (now !== ready) send({ type: 'ready', ready: (ready = now) });
}, 100);

port.on('message', (m: ToReadSide) => {
  if (m.type === 'start') return start(m.logIdentity);
  if (m.type === 'metrics') {
    void metrics.registry.metrics().then((text) => send({ type: 'metrics', id: m.id, text, parked: [...parking.counts] }));
    return;
  }
  clearInterval(watch);
  void (side?.stop() ?? Promise.resolve()).finally(async () => {
    await parking.close().catch(() => undefined);
    await prisma.$disconnect().catch(() => undefined);
    send({ type: 'stopped' });
  });
});

try {
  const logIdentity = await told;
  side = await startReadSide({ config, kafka, prisma, metrics, parking, health, instance, logIdentity }, parts);
  send({ type: 'started' });
} catch (err) {
  send({ type: 'failed', message: (err as Error).message });
}
