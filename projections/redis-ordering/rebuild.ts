import type { PartitionRef, RedisOrdering } from './reads.js';

/**
 * The rebuild protocol of the projection (README.md): the partition sentinels, a rebuild's
 * progress, the `building` flag of campaigns re-created meanwhile, and a replay job's steps.
 */

export async function markBuilt(o: RedisOrdering, where: PartitionRef): Promise<void> {
  await o.redis.set(o.keys.built(where.topic, where.partition), '1');
}

export interface RebuildProgress {
  next: bigint;
  until: bigint;
}

export async function saveRebuildProgress(o: RedisOrdering, where: PartitionRef, p: RebuildProgress): Promise<void> {
  await o.redis.set(o.keys.rebuild(where.topic, where.partition), JSON.stringify({ next: String(p.next), until: String(p.until) }));
}

/** A rebuild under way on the partition, or null. */
export async function rebuildProgress(o: RedisOrdering, where: PartitionRef): Promise<RebuildProgress | null> {
  const raw = await o.redis.get(o.keys.rebuild(where.topic, where.partition));
  if (!raw) return null;
  const r = JSON.parse(raw) as { next: string; until: string };
  return { next: BigInt(r.next), until: BigInt(r.until) };
}

/** The campaigns met are complete again, and so is the partition. */
export async function finishRebuild(o: RedisOrdering, where: PartitionRef, campaigns: Iterable<string>): Promise<void> {
  const k = o.keys;
  const pipe = o.redis.pipeline();
  for (const id of campaigns) pipe.hdel(k.meta(id), 'building');
  pipe.set(k.built(where.topic, where.partition), '1');
  pipe.del(k.rebuild(where.topic, where.partition));
  await pipe.exec();
}

/**
 * A replay job's step on one partition (lua/deletePartition.lua): the campaigns' keys and the
 * partition's sentinel go together, once per job; the writer then rebuilds the partition.
 */
export async function deletePartition(o: RedisOrdering, where: PartitionRef, jobId: string, campaignIds: readonly string[], markerTtlS: number): Promise<'DONE' | 'BUSY' | 'DELETED'> {
  const k = o.keys;
  const keys = [
    k.built(where.topic, where.partition),
    k.rebuild(where.topic, where.partition),
    k.replayMarker(where.topic, where.partition, jobId),
    ...campaignIds.flatMap((id) => [k.meta(id), k.line(id), k.won(id), k.gifts(id), k.carry(id)]),
  ];
  return (await o.redis.fcDeletePartition(keys.length, ...keys, String(markerTtlS))) as 'DONE' | 'BUSY' | 'DELETED';
}

/** How many campaigns a replay job deleted on the partition; null when it has not yet. */
export async function replayDeleted(o: RedisOrdering, where: PartitionRef, jobId: string): Promise<number | null> {
  const v = await o.redis.get(o.keys.replayMarker(where.topic, where.partition, jobId));
  return v === null ? null : Number(v);
}

/** Campaigns whose request count a replay carries. */
export async function carriedCampaigns(o: RedisOrdering): Promise<string[]> {
  const ids: string[] = [];
  const stream = o.redis.scanStream({ match: o.keys.carry('*'), count: 1000 });
  for await (const batch of stream as AsyncIterable<string[]>) for (const key of batch) ids.push(o.keys.campaignOf(key)!);
  return ids;
}

/** Folds a carried request count back into the rebuilt campaign: the amount, 0 when none, -1 when not rebuilt yet. */
export async function foldCarry(o: RedisOrdering, campaignId: string): Promise<number> {
  return Number(await o.redis.fcFoldCarry(o.keys.meta(campaignId), o.keys.carry(campaignId)));
}
