import type { Config } from '../src/config.js';
import type { LogStamped } from './agenda.js';
import { campaignClosed } from '../src/domain/events.js';
import type { EventAppender } from '../src/infra/kafka/appender.js';
import type { PrismaClient } from '../src/infra/prisma/client.js';
import type { RedisOrdering } from '../projections/redis-ordering/index.js';
import type { JobContext } from './runtime.js';

/** What the job carries in `agenda_jobs.data`. */
export interface CloseData extends LogStamped {
  campaignId: string;
}

export interface CloseDeps {
  config: Config;
  ordering: RedisOrdering;
  prisma: PrismaClient;
  appender: EventAppender;
}

/**
 * At `closesAt`, appends CampaignClosed (reason 'schedule') unless the campaign is closed already.
 * Its event id is the one an admin's close has too, and a second CampaignClosed changes nothing in
 * any projection, so a race with an admin or a re-run after a crash is harmless.
 */
export async function runClose(ctx: JobContext<CloseData>, deps: CloseDeps): Promise<'closed' | 'already-closed' | 'unknown'> {
  const id = ctx.data.campaignId;
  if (typeof id !== 'string') throw new Error('close job without a campaignId');
  let closesAt: number;
  let closedAt: number | null;
  const meta = await deps.ordering.meta(id);
  if (meta) {
    if (meta.building) throw new Error(`campaign ${id} is being rebuilt in Redis: closing it later`);
    closesAt = meta.terms.closesAt;
    closedAt = meta.terms.closedAt;
  } else {
    const row = await deps.prisma.campaign.findUnique({ where: { id } });
    if (!row) {
      ctx.log.warn({ campaignId: id }, 'close: campaign unknown to Redis and to the read model');
      return 'unknown';
    }
    closesAt = row.closesAt.getTime();
    closedAt = row.closedAt?.getTime() ?? null;
  }
  if (closedAt !== null) return 'already-closed';
  // a job may be picked up a little early (clock skew between processes): the event says when it closed
  const early = closesAt - Date.now();
  if (early > 0) await ctx.sleep(early);
  await deps.appender.append(campaignClosed(id, 'schedule'));
  ctx.log.info({ campaignId: id }, 'campaign closed on schedule');
  return 'closed';
}
