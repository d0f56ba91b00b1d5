import type { RedisOrdering } from './reads.js';
import { scanKeys } from './slots.js';

/** The campaigns the projection holds, as a whole: listing, counting for reconcile, removing. */

/** Every campaign id the projection's index knows, oldest first. */
export function listCampaigns(o: RedisOrdering): Promise<string[]> {
  return o.redis.zrange(o.keys.campaigns(), 0, -1);
}

/** Every campaign id that has any key under the prefix (SCAN, never KEYS). */
export async function scanCampaignIds(o: RedisOrdering): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const batch of scanKeys(o.redis, o.keys.anyCampaign())) {
    for (const key of batch) {
      const id = o.keys.campaignOf(key);
      if (id) ids.add(id);
    }
  }
  return ids;
}

/** Removes every key of a campaign (they share a hash slot, so one UNLINK) and its index entry. */
export async function removeCampaign(o: RedisOrdering, campaignId: string): Promise<void> {
  const all: string[] = [];
  for await (const batch of scanKeys(o.redis, o.keys.pattern(campaignId))) all.push(...batch);
  if (all.length > 0) await o.redis.unlink(...all);
  await o.redis.zrem(o.keys.campaigns(), campaignId);
}

export interface LineCounts {
  entrants: number;
  winners: number;
  issued: number;
  /** user → position, when asked for */
  won: Map<string, number> | null;
}

/** A campaign's counts as one atomic read, for reconcile; 'building' while it is rebuilt, null when not there. */
export async function lineCounts(o: RedisOrdering, id: string, withWinners: boolean): Promise<LineCounts | 'building' | null> {
  const k = o.keys;
  const [stock, building, entrants, winners, issued] = (
    (await o.redis
      .multi()
      .hget(k.meta(id), 'stock')
      .hget(k.meta(id), 'building')
      .zcard(k.line(id))
      .hlen(k.won(id))
      .hlen(k.gifts(id))
      .exec()) ?? []
  ).map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  if (building) return 'building';
  if (!stock) return null;
  let won: Map<string, number> | null = null;
  if (withWinners) won = new Map(Object.entries(await o.redis.hgetall(k.won(id))).map(([u, v]) => [u, Number(v.split('|')[0])]));
  return { entrants: Number(entrants), winners: Number(winners), issued: Number(issued), won };
}

/** How many users are in a campaign's line. */
export function lineSize(o: RedisOrdering, id: string): Promise<number> {
  return o.redis.zcard(o.keys.line(id));
}
