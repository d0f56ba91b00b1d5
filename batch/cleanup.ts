import type { Config } from '../src/config.js';
import { closedSince } from '../src/domain/campaign.js';
import { listCampaigns, removeCampaign, type RedisOrdering } from '../projections/redis-ordering/index.js';
import type { JobContext } from './runtime.js';

export interface CleanupDeps {
  config: Config;
  ordering: RedisOrdering;
}

export { closedSince } from '../src/domain/campaign.js';

/**
 * Removes the Redis keys of campaigns closed longer than REDIS_RETENTION_HOURS. The log keeps
 * everything (this never touches it) and Postgres keeps the read model; a later replay of the
 * partition brings the campaign back into Redis, and the next cleanup removes it again. An
 * INVENTORY campaign whose winners still wait for codes stays until they hold one: `loadCodes`
 * takes codes after the close for them, and the writer issues from the codes Redis keeps.
 */
export async function runCleanup(
  ctx: JobContext<Record<string, never>>,
  deps: CleanupDeps,
): Promise<{ checked: number; removed: string[] }> {
  const topic = deps.config.topics.events;
  const retentionMs = deps.config.REDIS_RETENTION_HOURS * 3_600_000;
  const ids = await listCampaigns(deps.ordering);
  const removed: string[] = [];
  let checked = 0;
  for (const id of ids) {
    ctx.check();
    checked++;
    const meta = await deps.ordering.meta(id);
    if (!meta || meta.building) continue; // gone already, or being rebuilt: not now
    const since = closedSince(meta.terms, Date.now());
    if (since === null || Date.now() - since < retentionMs) continue;
    if (!(await deps.ordering.isBuilt({ topic, partition: meta.partition }))) continue;
    if (meta.terms.issuance === 'INVENTORY' && (await waitingForCodes(deps.ordering, id))) continue;
    await removeCampaign(deps.ordering, id);
    removed.push(id);
    await ctx.progress(checked / ids.length);
  }
  if (removed.length > 0) ctx.log.info({ removed }, 'Redis keys of closed campaigns removed');
  return { checked, removed };
}

/** Winners of the campaign without a gifticon yet (an INVENTORY campaign short of codes). */
async function waitingForCodes(ordering: RedisOrdering, id: string): Promise<boolean> {
  const [c, inv] = await Promise.all([ordering.campaign(id), ordering.inventory(id)]);
  return c !== null && c !== 'building' && inv.issued < Math.min(c.winners, c.terms.stock);
}
