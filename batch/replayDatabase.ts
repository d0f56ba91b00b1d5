import { prismaCheckpoints } from './logPosition.js';
import { STALL_MS, weightedProgress, type TargetRun } from './replayState.js';
import { reachLine, writerOf } from './writers.js';

// A replay's DATABASE target: the Prisma projection's checkpoint set back, then its projector
// followed to the log's end at the start of the job (./replay.ts).

/** One read of the checkpoint rows (the writer's watch reads the group once a second whatever this is): a replay's end is seen within it. */
const DATABASE_POLL_MS = 50;

export async function replayDatabase({ ctx, deps, data, progress, note, watch }: TargetRun): Promise<void> {
  const state = data.database!;
  const topic = deps.config.topics.events;

  if (state.phase === 'rewinding') {
    // idempotent: rewinding a second time (a crash right after the first) only replays again
    await deps.rewind(deps.prisma, topic, data.campaignId);
    ctx.log.info({ partitions: state.partitions }, 'Prisma projection rewound: the projector replays from offset 0');
    state.phase = 'catching-up';
    await ctx.save(data);
  }

  if (state.phase === 'catching-up') {
    let last = -1;
    let movedAt = Date.now();
    for (;;) {
      ctx.check();
      const checkpoints = await prismaCheckpoints(deps.prisma, topic);
      const parts = state.partitions.map((p) => {
        const end = BigInt(state.ends[String(p)] ?? '0');
        const next = checkpoints.get(p) ?? 0n;
        return { partition: p, weight: end, fraction: end > 0n ? Number(next) / Number(end) : 1, done: next >= end, at: next, until: end };
      });
      if (parts.every((x) => x.done)) break;
      const open = parts.filter((x) => !x.done);
      const where = open.map((x) => `${x.partition} at offset ${x.at} of ${x.until}`).join(', ');
      const { waiting } = await watch.check(
        open.map((x) => x.partition),
        { doing: `the Prisma projection stopped catching up (partition ${where})`, then: 'it catches up by itself' },
      );
      note(`catching up: ${waiting ?? reachLine(writerOf(deps.config, 'database'), open)}`);
      const f = weightedProgress(parts);
      await progress(f);
      if (f !== last) {
        last = f;
        movedAt = Date.now();
      } else if (Date.now() - movedAt > STALL_MS) {
        throw new Error(
          `the Prisma projection made no progress for ${STALL_MS / 60_000} min on partitions ${state.partitions.join(',')}: is a projector running?`,
        );
      }
      await ctx.sleep(DATABASE_POLL_MS);
    }
    state.phase = 'done';
    state.finishedAt = Date.now();
    await progress(1);
    await ctx.save(data);
  }
}
