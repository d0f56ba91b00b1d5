import type { Redis } from 'ioredis';
import type { Keys } from '../src/infra/redis/ordering.js';

/**
 * The batch jobs' view of the Redis ordering projection's keys. What the decider writes (meta,
 * line, won, gifts) is what a replay throws away; what the API writes beside it (pending tickets,
 * claims, and the request counter carried over a replay) is kept.
 */

/** the keys the decider rebuilds from the log, per campaign */
export const DECIDER_SUFFIXES = ['meta', 'line', 'won', 'gifts'] as const;

/**
 * The API's request counter lives in the meta hash, which a replay deletes; the count is carried
 * here meanwhile (same hash slot) and folded back once the campaign is rebuilt.
 */
export const carryKey = (keys: Keys, campaignId: string) => `${keys.prefix}:{c:${campaignId}}:requests-carry`;

/** set, in the same script as the deletion, once a replay job deleted a partition's campaigns */
export const replayMarker = (keys: Keys, jobId: string, partition: number) => `${keys.prefix}:replay-deleted:${jobId}:${partition}`;

export const campaignKeys = (keys: Keys, id: string) => [keys.meta(id), keys.line(id), keys.won(id), keys.gifts(id), carryKey(keys, id)];

/** Every campaign id that has any key under the prefix (SCAN, never KEYS). */
export async function scanCampaignIds(redis: Redis, keys: Keys): Promise<Set<string>> {
  const ids = new Set<string>();
  const head = `${keys.prefix}:{c:`;
  const stream = redis.scanStream({ match: `${head}*`, count: 1000 });
  for await (const batch of stream as AsyncIterable<string[]>) {
    for (const k of batch) {
      const end = k.indexOf('}:', head.length);
      if (end > head.length) ids.add(k.slice(head.length, end));
    }
  }
  return ids;
}

/** Keys matching a pattern, by SCAN. */
export async function scanKeys(redis: Redis, match: string): Promise<string[]> {
  const out: string[] = [];
  const stream = redis.scanStream({ match, count: 1000 });
  for await (const batch of stream as AsyncIterable<string[]>) out.push(...batch);
  return out;
}

/**
 * The replay's one atomic step per partition. Deleting the built sentinel together with the
 * campaigns' keys means no reader ever sees a campaign gone while the partition counts as built
 * (that would read as "no such campaign"): until the decider has rebuilt it, the API answers
 * UNAVAILABLE. It runs only when no rebuild is under way (the sentinel is there and no progress
 * key), so it never cuts into a rebuild; and it runs once per job and partition (the marker).
 * KEYS: built, rebuild progress, marker, then per campaign: meta, line, won, gifts, carry
 * ARGV: marker TTL in seconds
 */
export const DELETE_PARTITION_LUA = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 'DONE' end
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then return 'BUSY' end
local campaigns = 0
for i = 4, #KEYS, 5 do
  local requests = redis.call('HGET', KEYS[i], 'requests')
  if requests then redis.call('INCRBY', KEYS[i + 4], requests) end
  redis.call('UNLINK', KEYS[i], KEYS[i + 1], KEYS[i + 2], KEYS[i + 3])
  campaigns = campaigns + 1
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], campaigns, 'EX', ARGV[1])
return 'DELETED'
`;

/**
 * Folds the carried request count back into a rebuilt campaign's meta, once (the carry key goes
 * in the same step). KEYS: meta, carry → the amount folded, 0 when none, -1 when not rebuilt yet
 */
export const FOLD_CARRY_LUA = `
local n = redis.call('GET', KEYS[2])
if not n then return 0 end
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 or redis.call('HEXISTS', KEYS[1], 'building') == 1 then return -1 end
redis.call('HINCRBY', KEYS[1], 'requests', n)
redis.call('DEL', KEYS[2])
return tonumber(n)
`;

/** The API's request counter of a campaign: what the meta holds plus what a replay carries. */
export async function requestsOf(redis: Redis, keys: Keys, campaignId: string): Promise<number | null> {
  const [requests, stock, carry] = await Promise.all([
    redis.hget(keys.meta(campaignId), 'requests'),
    redis.hget(keys.meta(campaignId), 'stock'),
    redis.get(carryKey(keys, campaignId)),
  ]);
  if (stock === null && carry === null) return null;
  return Number(requests ?? 0) + Number(carry ?? 0);
}
