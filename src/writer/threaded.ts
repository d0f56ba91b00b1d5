import { Worker } from 'node:worker_threads';
import type { Config } from '../config.js';
import type { HealthReporter } from '../health.js';
import { identityKey, type LogIdentity } from '../infra/kafka/logIdentity.js';
import { logger } from '../logger.js';
import type { Timing } from '../metrics.js';
import type { RoleHandle } from '../plugin.js';
import { WRITER, type SingleWriter } from './singleWriter.js';
import type { FromWriter } from './thread.js';

/** The single writer as its process sees it, on the main thread or its own. */
export interface WriterHandle extends RoleHandle {
  stats: SingleWriter['stats'];
  timing: Timing;
}

/**
 * The single writer in a worker thread of this process (see ./thread.ts for why), as the main
 * thread sees it: resolves once the thread has started the writer; `parked` is what the thread's
 * own producer parked.
 */
export async function startWriterThread(
  config: Config,
  instance: string,
  logIdentity: LogIdentity,
  health: HealthReporter,
): Promise<WriterHandle> {
  const entry = import.meta.url.endsWith('.ts') ? './thread-entry.mjs' : './thread.js';
  const worker = new Worker(new URL(entry, import.meta.url), { workerData: { config, instance, logTag: identityKey(logIdentity) } });
  let assigned = false;
  let parked = 0;
  const handle: WriterHandle = {
    stats: { batches: 0, entries: 0, winners: 0, rebuilds: 0 },
    timing: () => undefined,
    ready: () => assigned,
    parked: () => (parked > 0 ? [[WRITER, parked]] : []),
    async stop() {
      const stopped = new Promise<void>((r) => worker.on('message', (m: FromWriter) => m.type === 'stopped' && r()));
      worker.postMessage('stop');
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 15_000))]);
      await worker.terminate();
    },
  };
  const started = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: FromWriter) => {
      if (m.type === 'assigned') assigned = true;
      if (m.type === 'health') {
        if (m.error === null) health.ok(m.part);
        else health.failing(m.error, m.part);
      }
      if (m.type === 'stats') {
        handle.stats = m.stats;
        parked = m.parked;
        for (const [stage, seconds, size] of m.timings) handle.timing(stage, seconds, size);
      }
      if (m.type === 'failed') reject(new Error(`single writer thread: ${m.message}`));
      resolve();
    });
    worker.once('error', reject);
  });
  worker.on('error', (err) => logger.fatal({ err }, 'single writer thread failed'));
  await started;
  return handle;
}
