import { partitionFor } from '../../infra/kafka/partitioning.js';
import { logger } from '../../logger.js';
import { unavailable } from '../errors.js';
import type { PartitionRef } from '../../../projections/redis-ordering/index.js';
import { campaignId, requireAdmin, requireUser } from '../guards.js';
import { campaignOut, entryOut, type ApiServices, type Ctx } from '../resolvers.js';
import type { ChangeHub } from './changeHub.js';
import { PushQueue } from './pushQueue.js';

const log = logger.child({ component: 'subscriptions' });

export interface LiveCtx extends Ctx {
  hub: ChangeHub;
}

const partitionOf = (s: ApiServices, id: string): PartitionRef => ({
  topic: s.config.topics.events,
  partition: partitionFor(id, s.config.EVENT_PARTITIONS),
});

/**
 * A live value: read once at the start, then again whenever the hub says it changed, pushed only
 * when it differs from the last push. Reads never overlap (a change during a read is read once
 * more after it), so pushes come in the order Redis moved.
 */
async function live<T>(
  read: () => Promise<T | 'building'>,
  watch: (changed: () => void) => Promise<() => void>,
): Promise<AsyncIterableIterator<T>> {
  let last: string | undefined;
  let reading = false;
  let again = false;
  let unwatch: (() => void) | null = null;
  const queue = new PushQueue<T>(() => unwatch?.());
  const refresh = async (first: boolean) => {
    if (reading) return void (again = true);
    reading = true;
    try {
      do {
        again = false;
        const v = await read();
        // while Redis is rebuilt from the log, the answer waits for the next change
        if (v === 'building') {
          if (first) throw unavailable();
          continue;
        }
        const shown = JSON.stringify(v);
        if (shown !== last) {
          last = shown;
          queue.push(v);
        }
      } while (again && !queue.done);
    } finally {
      reading = false;
    }
  };
  unwatch = await watch(
    () =>
      void refresh(false).catch((err) => {
        log.warn({ err }, 'a live read failed');
        queue.fail(err);
      }),
  );
  if (queue.done) unwatch();
  try {
    await refresh(true);
  } catch (err) {
    await queue.return();
    throw err;
  }
  return queue;
}

/** Subscription fields (CONTRACT.md), pushed from the writer's notices through the process's hub. */
export function liveResolvers() {
  return {
    Subscription: {
      myEntry: {
        subscribe: (_: unknown, args: { campaignId: unknown }, ctx: LiveCtx) => {
          const caller = requireUser(ctx);
          const id = campaignId(args.campaignId);
          const s = ctx.services;
          return live(
            async () => {
              const e = await s.ordering.entry(id, caller.userId, partitionOf(s, id));
              if (e === 'building') return 'building';
              if (!e || e === 'unknown-campaign') return null;
              // the receipt is part of what is compared and pushed: it changes when a head covers the entry
              const receipt = (await s.fairness?.receipt(id, caller.userId, e.position, e.ticket).catch(() => null)) ?? null;
              return { ...entryOut(e, caller), receipt };
            },
            (changed) =>
              ctx.hub.watchEntry(id, caller.userId, (notice) =>
                // a head reaches the read model a moment after the writer signs it: read once it is there
                notice.head && s.fairness ? void s.fairness.awaitHead(id, notice.head).then(changed) : changed(),
              ),
          );
        },
        resolve: (entry: unknown) => entry,
      },
      campaign: {
        subscribe: (_: unknown, args: { id: unknown }, ctx: LiveCtx) => {
          requireAdmin(ctx);
          const id = campaignId(args.id, 'id');
          const s = ctx.services;
          return live(
            async () => {
              const v = await s.ordering.campaign(id, partitionOf(s, id));
              if (v === 'building') return 'building';
              return v && campaignOut(v);
            },
            (changed) => ctx.hub.watchCounters(id, changed),
          );
        },
        resolve: (campaign: unknown) => campaign,
      },
    },
  };
}
