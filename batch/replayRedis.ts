import type { Admin } from 'kafkajs';
import { partitionFor } from '../src/infra/kafka/partitioning.js';
import {
  carriedCampaigns,
  deletePartition,
  dropLeftMarks,
  foldCarry,
  rebuildProgress,
  replayDeleted,
  scanCampaignIds,
} from '../projections/redis-ordering/index.js';
import { committedOffsets, highWatermarks, nearlyReached } from './logPosition.js';
import { STALL_MS, weightedProgress, type ReplayData, type ReplayDeps, type TargetRun } from './replayState.js';
import type { JobContext } from './runtime.js';
import { reachLine, writerOf } from './writers.js';

// A replay's REDIS target: the affected partitions' keys wiped to a `building` mark and their
// sentinels gone, then the single writer's rebuild from offset 0 followed to its end (./replay.ts).

const MARKER_TTL_S = 7 * 24 * 3600;
/** a round of the rebuild's progress and its writer's watch */
const POLL_MS = 50;
/**
 * The rebuild's end is seen within it (one GET per partition rebuilt): at 100k events/s a replay of
 * 100k events is a second long, and a 50 ms poll added 25 ms to it on average.
 */
const BUILT_POLL_MS = 10;

export async function replayRedis({ ctx, deps, data, progress, note, watch, admin }: TargetRun): Promise<void> {
  const state = data.redis!;
  const { ordering, config } = deps;
  const topic = config.topics.events;

  if (state.phase === 'deleting') {
    // counted from the markers, so a resumed job counts what an earlier run of it deleted too
    let campaigns = 0;
    for (const p of state.partitions) {
      const waitingSince = Date.now();
      for (;;) {
        ctx.check();
        const where = { topic, partition: p };
        const deleted = await replayDeleted(ordering, where, ctx.id);
        if (deleted !== null) {
          campaigns += deleted; // deleted by this job already (an earlier run, or just now)
          break;
        }
        const busy = !(await ordering.isBuilt(where)) || (await rebuildProgress(ordering, where)) !== null;
        if (!busy) {
          await waitQuiet(ctx, deps, admin, p, note);
          const ids =
            data.campaignId !== null
              ? [data.campaignId]
              : [...(await scanCampaignIds(ordering))].filter((id) => partitionFor(id, config.EVENT_PARTITIONS) === p);
          const r = await deletePartition(ordering, where, ctx.id, ids, MARKER_TTL_S);
          if (r === 'DELETED') {
            ctx.log.info(
              { partition: p, campaigns: ids.length },
              'Redis campaigns wiped and built sentinel deleted: the writer rebuilds the partition',
            );
            continue; // counted from the marker
          }
          if (r === 'DONE') continue;
        }
        // BUSY: a rebuild of this partition is under way (a flush, another replay): let it finish first
        if (Date.now() - waitingSince > STALL_MS) {
          throw new Error(`partition ${p} has been rebuilding for ${STALL_MS / 60_000} min: is a writer running?`);
        }
        const { waiting } = await watch.check([p], {
          doing: `a rebuild of partition ${p} is under way (a flush, or another replay)`,
          then: 'then run the replay again (nothing was deleted)',
        });
        note(`deleting: ${waiting ?? `waiting for the rebuild under way on partition ${p} (a flush, or another replay) to finish first`}`);
        await ctx.sleep(250);
      }
    }
    state.campaigns = campaigns;
    state.phase = 'rebuilding';
    await ctx.save(data);
  }

  if (state.phase === 'rebuilding') {
    let last = -1;
    let movedAt = Date.now();
    for (;;) {
      ctx.check();
      const parts = await Promise.all(
        state.partitions.map(async (p) => {
          const weight = BigInt(state.ends[String(p)] ?? '0');
          if (await ordering.isBuilt({ topic, partition: p }))
            return { partition: p, weight, fraction: 1, built: true, at: null, until: 0n };
          const r = await rebuildProgress(ordering, { topic, partition: p });
          const fraction = r && r.until > 0n ? Number(r.next) / Number(r.until) : 0;
          return { partition: p, weight, fraction, built: false, at: r ? r.next : null, until: r ? r.until : weight };
        }),
      );
      const f = weightedProgress(parts);
      if (parts.every((x) => x.built)) break;
      const open = parts.filter((x) => !x.built);
      const where = open.map((x) => `${x.partition} at offset ${x.at ?? 0n} of ${x.until}`).join(', ');
      const { waiting } = await watch.check(
        open.map((x) => x.partition),
        {
          doing: `the rebuild stopped (partition ${where})`,
          then: 'it finishes the rebuild by itself; the Redis reads of these partitions answer UNAVAILABLE until then',
        },
      );
      const w = writerOf(config, 'redis');
      note(`rebuilding: ${waiting ?? reachLine(w, open)}`);
      await progress(f);
      if (f !== last) {
        last = f;
        movedAt = Date.now();
      } else if (Date.now() - movedAt > STALL_MS) {
        throw new Error(
          `the Redis rebuild of partitions ${state.partitions.join(',')} made no progress for ${STALL_MS / 60_000} min: is a writer running?`,
        );
      }
      // between the rounds above, only the sentinels: the end is seen within BUILT_POLL_MS
      for (let waited = 0; waited < POLL_MS; waited += BUILT_POLL_MS) {
        await ctx.sleep(BUILT_POLL_MS);
        if ((await Promise.all(open.map((x) => ordering.isBuilt({ topic, partition: x.partition })))).every(Boolean)) break;
      }
    }
    const left =
      data.campaignId !== null
        ? [data.campaignId]
        : [...(await scanCampaignIds(ordering))].filter((id) => state.partitions.includes(partitionFor(id, config.EVENT_PARTITIONS)));
    const dropped = await dropLeftMarks(ordering, left);
    if (dropped.length > 0)
      ctx.log.info(
        { campaigns: dropped.length },
        'campaigns closed past retention were not rebuilt into Redis: their reads come from the read model',
      );
    await foldCarries(ctx, deps, data);
    state.phase = 'done';
    state.finishedAt = Date.now();
    await progress(1);
    await ctx.save(data);
  }
}

/**
 * Best effort: lets a batch the single writer is deciding right now finish before the keys go (its
 * committed offset reaches the end of the log), so no decision is under way while the partition is
 * cut. Gives up quietly after a few seconds on a busy partition: the writer still rebuilds.
 */
async function waitQuiet(
  ctx: JobContext<ReplayData>,
  deps: ReplayDeps,
  admin: Admin,
  partition: number,
  note: (text: string) => void,
): Promise<void> {
  const topic = deps.config.topics.events;
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const [ends, committed] = await Promise.all([highWatermarks(admin, topic), committedOffsets(admin, deps.config.groups.writer, topic)]);
    const end = ends.get(partition) ?? 0n;
    const next = committed.get(partition) ?? 0n;
    if (nearlyReached(next, end)) return;
    note(
      `deleting: waiting up to 5 s for the writer of partition ${partition} to commit what it is deciding (${reachLine(writerOf(deps.config, 'redis'), [{ partition, at: next, until: end - 1n }])})`,
    );
    await ctx.sleep(100);
  }
  ctx.log.warn({ partition }, 'partition still busy: deleting anyway, the writer rebuilds it');
}

async function foldCarries(ctx: JobContext<ReplayData>, deps: ReplayDeps, data: ReplayData): Promise<void> {
  const ids = data.campaignId !== null ? [data.campaignId] : await carriedCampaigns(deps.ordering);
  for (const id of ids) {
    const n = await foldCarry(deps.ordering, id);
    if (n < 0) ctx.log.warn({ campaignId: id }, 'campaign not in the rebuilt projection: its request count stays carried');
  }
}
