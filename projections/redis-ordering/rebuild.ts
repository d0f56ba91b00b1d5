import { randomUUID } from 'node:crypto';
import type { WipeSignal } from '../../src/writer/ports.js';
import { ChannelSubscriber, publish } from './channels.js';
import { sentinelValue } from './identity.js';
import type { PartitionRef, Store } from './keys.js';
import { scanKeys, SlotPipelines } from './slots.js';

/**
 * The rebuild protocol of the projection (README.md): the partition sentinels, a rebuild's
 * progress, the `building` flag of campaigns re-created meanwhile, and a replay job's steps.
 */

/** The partition's projection is complete up to its writer's position: a new token, so readers can tell one build from the next. */
export async function markBuilt(o: Store, where: PartitionRef): Promise<void> {
  await o.redis.set(o.keys.built(where.topic, where.partition), sentinelValue(o, randomUUID()));
}

/**
 * A campaign none of whose keys a reader found: 'unknown' only if its partition was built before
 * and after a second look at the campaign, by the same build (the sentinel's token); 'building'
 * otherwise; 'present' when the second look finds it (created or rebuilt meanwhile: read again).
 * The sentinel lives in another hash slot than the campaign, so this takes three round trips: it is
 * paid only by a campaign not found.
 */
export async function confirmAbsent(o: Store, where: PartitionRef, campaignId: string): Promise<'unknown' | 'building' | 'present'> {
  const built = o.keys.built(where.topic, where.partition);
  const before = await o.redis.get(built);
  if (before === null) return 'building';
  const present = (await o.redis.exists(o.keys.meta(campaignId))) === 1;
  const after = await o.redis.get(built);
  if (after !== before) return 'building';
  return present ? 'present' : 'unknown';
}

export interface RebuildProgress {
  next: bigint;
  until: bigint;
}

export async function saveRebuildProgress(o: Store, where: PartitionRef, p: RebuildProgress): Promise<void> {
  await o.redis.set(o.keys.rebuild(where.topic, where.partition), JSON.stringify({ next: String(p.next), until: String(p.until) }));
}

/** A rebuild under way on the partition, or null. */
export async function rebuildProgress(o: Store, where: PartitionRef): Promise<RebuildProgress | null> {
  const raw = await o.redis.get(o.keys.rebuild(where.topic, where.partition));
  if (!raw) return null;
  const r = JSON.parse(raw) as { next: string; until: string };
  return { next: BigInt(r.next), until: BigInt(r.until) };
}

/**
 * The end of a rebuild: each campaign it re-created is complete again (its `building` flag goes),
 * and then the partition is built. False, and the partition left unbuilt, when one of them was lost
 * meanwhile (a flush, a replay's wipe): the rebuild must start over.
 */
export async function finishRebuild(o: Store, where: PartitionRef, created: Iterable<string>): Promise<boolean> {
  const k = o.keys;
  const pipes = new SlotPipelines(o.redis);
  for (const id of created) pipes.on(k.meta(id)).fcFinish(k.meta(id));
  const results = await pipes.exec();
  for (const [err, complete] of results) {
    if (err) throw err;
    if (Number(complete) !== 1) return false;
  }
  await o.redis
    .multi()
    .set(k.built(where.topic, where.partition), sentinelValue(o, randomUUID()))
    .del(k.rebuild(where.topic, where.partition))
    .exec();
  return true;
}

/**
 * How long a replay job's `wiping` key outlives its last sign of progress: a job that dies while
 * wiping holds its partition's rebuild back this long at most (its successor, once the worker's
 * lock expires in 20 s, wipes again and holds it anew).
 */
export const WIPING_TTL_MS = 30_000;

/** A replay job is wiping the partition's campaigns (`deletePartition`): a rebuild started now would have to run again once it ends. */
export async function wipeUnderWay(o: Store, where: PartitionRef): Promise<boolean> {
  return (await o.redis.exists(o.keys.wiping(where.topic, where.partition))) === 1;
}

/**
 * A replay job's step on one partition, run once per job (its marker) and only while no rebuild is
 * under way: the sentinel goes (lua/replayStart.lua), each campaign is wiped to a `building` mark
 * (lua/wipe.lua, one slot each), and the sentinel goes once more, so a rebuild that finished before
 * a wipe runs again. A rebuild under way meanwhile does not finish over a wiped campaign
 * (`finishRebuild`). A job that died half way wipes again when it runs again ('wiping').
 *
 * The partition's `wiping` key is held from the first step to the last, so its writer does not
 * start a rebuild in between (its 50 ms look at the sentinel would otherwise find it gone, and a
 * small partition rebuilt before the wipes end was rebuilt twice): it rebuilds once, when the
 * wipe is announced.
 */
export async function deletePartition(
  o: Store,
  where: PartitionRef,
  jobId: string,
  campaignIds: readonly string[],
  markerTtlS: number,
): Promise<'DONE' | 'BUSY' | 'DELETED'> {
  const k = o.keys;
  const built = k.built(where.topic, where.partition);
  const wiping = k.wiping(where.topic, where.partition);
  const marker = k.replayMarker(where.topic, where.partition, jobId);
  const start = await o.redis.fcReplayStart(
    built,
    k.rebuild(where.topic, where.partition),
    marker,
    wiping,
    String(markerTtlS),
    String(WIPING_TTL_MS),
  );
  if (start === 'BUSY' || start.startsWith('done:')) return start === 'BUSY' ? 'BUSY' : 'DONE';
  // replayStart.lua did both when it started the job here; a job that died while wiping does them again
  if (start === 'wiping') await o.redis.multi().set(wiping, marker, 'PX', WIPING_TTL_MS).del(built).exec();
  let renewed = Date.now();
  for (const id of campaignIds) {
    if (Date.now() - renewed > WIPING_TTL_MS / 3) {
      await o.redis.pexpire(wiping, WIPING_TTL_MS);
      renewed = Date.now();
    }
    await o.redis.fcWipe(
      k.meta(id),
      k.line(id),
      k.won(id),
      k.gifts(id),
      k.carry(id),
      k.codes(id),
      k.codeHashes(id),
      k.chunks(id),
      k.parkedIssuances(id),
    );
  }
  await o.redis.multi().del(built).del(wiping).exec();
  await o.redis.set(marker, `done:${campaignIds.length}`, 'EX', markerTtlS);
  // best effort: a writer that misses it sees the sentinel gone within its poll
  await publish(o.redis, k.wiped(where.topic, where.partition), jobId).catch(() => undefined);
  return 'DELETED';
}

/**
 * The partitions' writer hears each replay job's wipe as it happens (`deletePartition`); it reads
 * the sentinels every 50 ms as well, which an average 25 ms of every replay was spent waiting for.
 */
export class RedisWipeSignal implements WipeSignal {
  constructor(
    private readonly o: Store,
    private readonly topic: string,
  ) {}

  async listen(partitions: readonly number[], wiped: (partition: number) => void): Promise<() => Promise<void>> {
    const byChannel = new Map(partitions.map((p) => [this.o.keys.wiped(this.topic, p), p]));
    const sub = ChannelSubscriber.of(this.o.redis);
    sub.onMessage((channel) => {
      const p = byChannel.get(channel);
      if (p !== undefined) wiped(p);
    });
    try {
      for (const channel of byChannel.keys()) await sub.subscribe(channel);
    } catch (err) {
      await sub.quit();
      throw err;
    }
    return () => sub.quit();
  }
}

/**
 * Once the partitions are built again: the wipe marks of campaigns the rebuild did not bring back
 * (closed past retention, below a bounded rebuild's start) go (lua/unmark.lua, one slot each).
 * Returns those campaigns.
 */
export async function dropLeftMarks(o: Store, campaignIds: readonly string[]): Promise<string[]> {
  const dropped: string[] = [];
  for (const id of campaignIds) if ((await o.redis.fcUnmark(o.keys.meta(id))) === 1) dropped.push(id);
  if (dropped.length > 0) await o.redis.zrem(o.keys.campaigns(), ...dropped);
  return dropped;
}

/** How many campaigns a replay job wiped on the partition; null until it has. */
export async function replayDeleted(o: Store, where: PartitionRef, jobId: string): Promise<number | null> {
  const v = await o.redis.get(o.keys.replayMarker(where.topic, where.partition, jobId));
  return v?.startsWith('done:') ? Number(v.slice('done:'.length)) : null;
}

/** Campaigns whose request count a replay carries. */
export async function carriedCampaigns(o: Store): Promise<string[]> {
  const ids: string[] = [];
  for await (const batch of scanKeys(o.redis, o.keys.carry('*'))) for (const key of batch) ids.push(o.keys.campaignOf(key)!);
  return ids;
}

/** Folds a carried request count back into the rebuilt campaign: the amount, 0 when none, -1 when not rebuilt yet. */
export async function foldCarry(o: Store, campaignId: string): Promise<number> {
  return Number(await o.redis.fcFoldCarry(o.keys.meta(campaignId), o.keys.carry(campaignId)));
}
