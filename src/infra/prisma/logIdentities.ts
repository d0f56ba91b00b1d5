import { compareIdentity, type IdentityVerdict, type LogIdentity } from '../kafka/logIdentity.js';
import type { Prisma, PrismaClient } from './client.js';

/**
 * The log each projection of this database was built from (`log_identities`, one row per
 * projection). A projection writes its row in the same transaction as its first write (the Prisma
 * tables: in the statement that locks the checkpoint; the at-least-once processors: with their
 * first checkpoint), so a database never holds rows of a log it has not recorded.
 *
 * One database is one deployment: every row must name the log this process follows. A second
 * deployment (another TOPIC_PREFIX, another cluster) pointed at the same database finds rows of
 * another log and is refused, rather than mixing its campaigns with the first one's.
 */

export interface RecordedIdentity {
  projection: string;
  identity: LogIdentity;
}

export async function recordedIdentities(prisma: PrismaClient | Prisma.TransactionClient): Promise<RecordedIdentity[]> {
  const rows = await prisma.logIdentityRecord.findMany({ orderBy: { projection: 'asc' } });
  return rows.map((r) => ({
    projection: r.projection,
    identity: { clusterId: r.clusterId, topic: r.topic, partitions: r.partitions, logId: r.logId },
  }));
}

/** Records `identity` for `projection` unless it has one (its first write does this, in its transaction). */
export async function adoptIdentity(tx: PrismaClient | Prisma.TransactionClient, projection: string, identity: LogIdentity): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO log_identities (projection, cluster_id, topic, partitions, log_id, recorded_at)
    VALUES (${projection}, ${identity.clusterId}, ${identity.topic}, ${identity.partitions}, ${identity.logId}, ${new Date()})
    ON CONFLICT (projection) DO NOTHING`;
}

/**
 * What the database says of the log this process found: the first projection built from another
 * log, or `adopt` when none has recorded one (a new database, or one from before identities: its
 * projections take this log with their next write), or `same`.
 */
export function databaseVerdict(recorded: readonly RecordedIdentity[], current: LogIdentity): IdentityVerdict & { projection?: string } {
  for (const r of recorded) {
    const v = compareIdentity(r.identity, current);
    if (v.kind === 'other') return { ...v, projection: r.projection };
  }
  return recorded.length === 0 ? { kind: 'adopt' } : { kind: 'same' };
}

/** Checkpoints beyond the end of their partition: the log they were kept of is not this one (or lost its tail). */
export async function checkpointsBeyondEnd(
  prisma: PrismaClient,
  topic: string,
  ends: ReadonlyMap<number, bigint>,
): Promise<{ projection: string; partition: number; next: bigint; end: bigint }[]> {
  const rows = await prisma.projectionCheckpoint.findMany({
    where: { topic },
    select: { projection: true, partition: true, nextOffset: true },
  });
  return rows
    .filter((r) => ends.has(r.partition) && r.nextOffset > ends.get(r.partition)!)
    .map((r) => ({ projection: r.projection, partition: r.partition, next: r.nextOffset, end: ends.get(r.partition)! }));
}
