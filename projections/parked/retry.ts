import type { CampaignEvent } from '../../src/domain/events.js';
import { issuanceRequested, ticketOf } from '../../src/domain/events.js';
import { decodeRecord, NewerEventError } from '../../src/infra/kafka/codec.js';
import type { ParkedRecord as Row, PrismaClient } from '../../src/infra/prisma/client.js';
import { logger } from '../../src/logger.js';
import { applyBatch, errorLine, PRISMA_PROJECTION, rewindPrismaProjection } from '../prisma-tables/projector.js';

const log = logger.child({ component: 'parking' });

export interface RetryDeps {
  prisma: PrismaClient;
  /** appends an event to the log again, acknowledged by all in-sync replicas */
  append: (event: CampaignEvent) => Promise<{ partition: number; offset: bigint }>;
  /** EVENT_PARTITIONS: a rebuild rewinds only the campaign's own partition */
  partitions: number;
}

/** Events whose rows do not depend on what came before them in the campaign: they can be applied alone. */
const ORDER_FREE: ReadonlySet<CampaignEvent['type']> = new Set(['WinnerSelected', 'GifticonIssued', 'CampaignSoldOut']);

export type RetryOutcome = { kind: 'retried'; row: Row } | { kind: 'still-parked'; row: Row } | { kind: 'not-found' };

/**
 * Tries a parked record again with the code now running. The raw bytes are decoded anew:
 * - still not an event (or of a newer version than this build knows): it stays parked, with the
 *   attempt counted and the reason of this attempt;
 * - an event the Prisma tables could not apply: applied to them again, alone when its rows do not
 *   depend on its place in the line, else by rebuilding its campaign's rows from the log;
 * - otherwise (a record that was not an event and now is): appended to the log again, where every
 *   consumer reads it at its new place, after every entry already in line.
 * One retry at a time per record: the attempt is claimed by bumping `attempts` first.
 */
export async function retryParked(deps: RetryDeps, id: string): Promise<RetryOutcome> {
  const { prisma } = deps;
  const row = await prisma.parkedRecord.findUnique({ where: { id } });
  if (!row) return { kind: 'not-found' };
  if (row.status === 'RETRIED') return { kind: 'retried', row };
  const claimed = await prisma.parkedRecord.updateMany({
    where: { id, status: 'PARKED', attempts: row.attempts },
    data: { attempts: row.attempts + 1 },
  });
  if (claimed.count === 0) return outcome(await prisma.parkedRecord.findUniqueOrThrow({ where: { id } }));

  const keep = async (error: string) =>
    ({ kind: 'still-parked', row: await prisma.parkedRecord.update({ where: { id }, data: { error: error.slice(0, 500) } }) }) as const;
  const done = async (retriedAs: string) => {
    log.info({ id, retriedAs }, 'parked record retried');
    return {
      kind: 'retried',
      row: await prisma.parkedRecord.update({ where: { id }, data: { status: 'RETRIED', retriedAt: new Date(), retriedAs } }),
    } as const;
  };

  // a provider issuance is called again by the issuer with the same key, never by appending its
  // WinnerSelected again (every consumer would read a second one)
  if (row.reason === 'provider') return redrive(deps, row, keep, done);
  // one event, or the events of a packed record (one campaign's), which are one unit
  const ds = decodeRecord(row.raw === null ? null : Buffer.from(row.raw, 'base64'), row.partition, row.logOffset);
  const d = ds[0]!;
  if (d.kind === 'foreign') return keep(d.error);
  if (d.kind === 'newer') return keep(new NewerEventError('retry', d).message);
  // never parked by this build: a genesis record holds no event to retry
  if (d.kind === 'genesis') return done('nothing to retry: a genesis record');
  const logged = ds.flatMap((x) => (x.kind === 'event' ? [x.logged] : []));
  try {
    if (row.reason === 'unapplied' && row.consumer === PRISMA_PROJECTION) {
      const e = d.logged.event;
      if (logged.every((l) => ORDER_FREE.has(l.event.type))) {
        await prisma.$transaction((tx) => applyBatch(tx, logged), { timeout: 30_000 });
        return await done(`applied to ${PRISMA_PROJECTION}`);
      }
      // a campaign's terms and its line shape every row after them (positions are counted in log
      // order), so the campaign is rebuilt from the log in order; a record that fails again then is
      // parked again, and its row goes back to PARKED
      await rewindPrismaProjection(prisma, row.topic, e.campaignId, { partitions: deps.partitions });
      return await done(`${PRISMA_PROJECTION} rebuilding campaign ${e.campaignId} from the log`);
    }
    let at = { partition: row.partition, offset: row.logOffset };
    for (const l of logged) at = await deps.append(l.event);
    return await done(ticketOf(at.partition, at.offset));
  } catch (err) {
    return keep(errorLine(err));
  }
}

const outcome = (row: Row): RetryOutcome => (row.status === 'RETRIED' ? { kind: 'retried', row } : { kind: 'still-parked', row });

/**
 * A parked provider issuance: an IssuanceRequested for the winner, which the issuer calls the
 * provider for with the winner's same idempotency key (a voucher issued meanwhile comes back, never a
 * second one). The record reads RETRIED; the issuer parks it again (PARKED) if the provider refuses again.
 */
async function redrive(
  deps: RetryDeps,
  row: Row,
  keep: (error: string) => Promise<RetryOutcome>,
  done: (retriedAs: string) => Promise<RetryOutcome>,
): Promise<RetryOutcome> {
  let winner: { campaignId?: unknown; userId?: unknown; position?: unknown };
  try {
    winner = JSON.parse(Buffer.from(row.raw ?? '', 'base64').toString('utf8')) as typeof winner;
  } catch {
    return keep('a parked provider issuance that does not name its winner');
  }
  const { campaignId, userId, position } = winner;
  if (typeof campaignId !== 'string' || typeof userId !== 'string' || typeof position !== 'number')
    return keep('a parked provider issuance that does not name its winner');
  try {
    const at = await deps.append(issuanceRequested({ campaignId, userId, position }, `retry:${row.id}:${row.attempts + 1}`));
    return await done(ticketOf(at.partition, at.offset));
  } catch (err) {
    return keep(errorLine(err));
  }
}
