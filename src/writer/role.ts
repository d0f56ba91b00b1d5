import type { HealthReporter } from '../health.js';
import type { RoleContext } from '../plugin.js';
import { assembleWriter } from './assemble.js';
import { startWriterThread, type WriterHandle } from './threaded.js';

/**
 * The `writer` role: the single writer of every partition it is assigned. Beside the API it runs
 * on a thread of its own (WRITER_THREAD, ./thread.ts says why); otherwise on the main thread with
 * the process's clients.
 */
export async function startWriterRole(ctx: RoleContext): Promise<WriterHandle> {
  const { config, metrics } = ctx;
  const reporter = ctx.health.reporter('writer');
  const handle =
    ctx.roles.includes('api') && config.WRITER_THREAD
      ? await startWriterThread(config, ctx.instance, ctx.logIdentity, reporter)
      : await startOnThisThread(ctx, reporter);
  metrics.counterFrom('firstcome_writer_batches_total', 'fetched batches decided', () => handle.stats.batches);
  metrics.counterFrom('firstcome_writer_entries_total', 'entries placed', () => handle.stats.entries);
  metrics.counterFrom('firstcome_writer_winners_total', 'winners selected', () => handle.stats.winners);
  metrics.counterFrom('firstcome_writer_rebuilds_total', 'Redis projection rebuilds from the log', () => handle.stats.rebuilds);
  handle.timing = metrics.timing;
  return handle;
}

async function startOnThisThread(ctx: RoleContext, health: HealthReporter): Promise<WriterHandle> {
  const { writer, stop } = assembleWriter(ctx);
  writer.health = health;
  let assigned = false;
  const handle: WriterHandle = {
    stats: writer.stats,
    timing: () => undefined,
    ready: () => assigned && writer.stops.size === 0,
    stop,
  };
  writer.timing = (...a) => handle.timing(...a);
  await writer.start();
  void writer.ready().then(() => (assigned = true));
  return handle;
}
