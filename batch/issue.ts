import type { LogStamped } from './agenda.js';
import { issuanceRequested } from '../src/domain/events.js';
import type { EventAppender } from '../src/infra/kafka/appender.js';
import type { PrismaClient } from '../src/infra/prisma/client.js';
import type { JobContext } from './runtime.js';

/** What the job carries in `agenda_jobs.data`: the campaign, and how far it walked (resumable). */
export interface IssueData extends LogStamped {
  campaignId: string;
  /** the last winner's position it asked for; the walk goes on after it */
  after?: number;
  requested?: number;
  /** how many winners the campaign had when the walk began: the progress is measured against it */
  winners?: number;
  chunk?: number;
}

export const ISSUE_CHUNK = 100;

export interface IssueDeps {
  prisma: PrismaClient;
  appender: EventAppender;
}

/**
 * The chunked issuance step: walks a PROVIDER campaign's winners by position, 100 at a time, and for
 * each one with no gifticon and no open parked issuance appends an IssuanceRequested, which the
 * issuer role acts on through its own path (paced, with the winner's same idempotency key). It never
 * appends a GifticonIssued itself. The read model may lag the issuer: a winner issued meanwhile is
 * asked for again, and the issuer, which reads the log, passes it by. Each chunk's place is saved,
 * so a worker that dies resumes after the last chunk it finished.
 */
export async function runIssue(ctx: JobContext<IssueData>, deps: IssueDeps): Promise<void> {
  const { prisma, appender } = deps;
  const { campaignId } = ctx.data;
  if (typeof campaignId !== 'string') throw new Error('issue job without a campaignId');
  const chunk = ctx.data.chunk ?? ISSUE_CHUNK;
  const total = ctx.data.winners ?? (await prisma.winner.count({ where: { campaignId } }));
  let after = ctx.data.after ?? 0;
  let requested = ctx.data.requested ?? 0;
  for (;;) {
    ctx.check();
    const winners = await prisma.winner.findMany({
      where: { campaignId, position: { gt: after } },
      orderBy: { position: 'asc' },
      take: chunk,
    });
    if (winners.length === 0) break;
    const users = winners.map((w) => w.userId);
    const [issued, parked] = await Promise.all([
      prisma.gifticon.findMany({ where: { campaignId, userId: { in: users } }, select: { userId: true } }),
      // the issuer names a parked issuance issuer:<campaignId>:<position>
      prisma.parkedRecord.findMany({
        where: { reason: 'provider', status: 'PARKED', id: { in: winners.map((w) => `issuer:${campaignId}:${w.position}`) } },
        select: { id: true },
      }),
    ]);
    const skip = new Set([...issued.map((g) => g.userId)]);
    const parkedAt = new Set(parked.map((r) => r.id));
    const asks = winners.filter((w) => !skip.has(w.userId) && !parkedAt.has(`issuer:${campaignId}:${w.position}`));
    await Promise.all(asks.map((w) => appender.append(issuanceRequested(w, `job:${ctx.id}`))));
    requested += asks.length;
    after = winners[winners.length - 1]!.position;
    await ctx.save({ ...ctx.data, after, requested, winners: total });
    await ctx.progress(total === 0 ? 1 : Math.min(1, after / total));
    ctx.note(`asked again for ${requested} winners; walked to position ${after} of ${total}`);
  }
  await ctx.progress(1);
  ctx.log.info({ campaignId, requested }, 'issue: winners without a gifticon asked for again');
}
