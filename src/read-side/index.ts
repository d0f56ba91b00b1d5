import { ConsumerHost } from './consumerHost.js';
import type { ReadSideFactory, ReadSidePart, ReadSideShared, ReadSideStatus } from '../plugin.js';
import { readSideRoles, roleEntry } from '../roles.js';

/**
 * The read-side parts of `roles` (their registry entries' `readSide`, src/roles.ts), loaded (not
 * built). Loaded wherever the consumer host runs: the process's main thread, or the read side's own
 * thread (./thread.ts).
 */
export function loadReadSide(roles: readonly string[]): Promise<ReadSideFactory[]> {
  return Promise.all(readSideRoles(roles).map((r) => roleEntry(r).readSide!()));
}

export interface ReadSide extends ReadSideStatus {
  stop(): Promise<void>;
}

/**
 * One consumer host fed by the processors of the parts (`loadReadSide`), started: one fetch and one
 * decode of the log for every processor of the process (consumerHost.ts beside this file).
 */
export async function startReadSide(
  shared: ReadSideShared,
  factories: readonly ReadSideFactory[],
  opts?: ConstructorParameters<typeof ConsumerHost>[3],
): Promise<ReadSide> {
  const host = new ConsumerHost(shared.kafka, shared.config, shared.parking, opts);
  const built: ReadSidePart[] = [];
  const stopParts = async () => {
    for (const part of built.reverse()) await part.stop();
  };
  try {
    for (const build of factories) {
      const part = await build(shared);
      built.push(part);
      for (const p of part.processors) host.add(p);
    }
    await host.start();
  } catch (err) {
    await host.stop().catch(() => undefined);
    await stopParts().catch(() => undefined);
    throw err;
  }
  return {
    ready: () => host.ready(),
    stop: async () => {
      await host.stop();
      await stopParts();
    },
  };
}
