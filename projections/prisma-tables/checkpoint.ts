import type { Prisma, PrismaClient } from '../../src/infra/prisma/client.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import type { LogIdentity } from '../../src/infra/kafka/logIdentity.js';
import { REWIND_CHANNEL } from './rewinds.js';

/** The projection's name in `projection_checkpoints`. */
export const PRISMA_PROJECTION = 'prisma-tables';

type Tx = Prisma.TransactionClient;

/**
 * Locks the partition's checkpoint row, and in the same statement (one round trip less per batch)
 * lets the commit not wait for the WAL flush. Safe here, and only here: the checkpoint is in the
 * same transaction as the rows, so a Postgres crash can lose a tail of committed batches only
 * together with their checkpoint, and the projector applies them again from the log. It takes the
 * flush (2-7 ms on this machine under load) off every batch: it was most of a small batch's commit.
 * set_config(…, true) is SET LOCAL; it is outside the row's subquery so that it runs when the row
 * is missing too.
 *
 * The same statement records the log this process follows when the tables have recorded none
 * (log_identities: the first write adopts it, in its own transaction), and reads the one recorded
 * before: the statement's own insert is not seen by its SELECT, so `recorded` is null then.
 */
export async function lockCheckpoint(
  tx: Tx,
  topic: string,
  partition: number,
  identity: LogIdentity | null,
): Promise<{ next: bigint; recorded: LogIdentity | null }> {
  type Row = {
    next_offset: bigint | number | string | null;
    cluster_id: string | null;
    topic: string | null;
    partitions: number | null;
    log_id: string | null;
  };
  const rows = identity
    ? await tx.$queryRaw<Row[]>`
        WITH adopted AS (
          INSERT INTO log_identities (projection, cluster_id, topic, partitions, log_id, recorded_at)
          VALUES (${PRISMA_PROJECTION}, ${identity.clusterId}, ${identity.topic}, ${identity.partitions}, ${identity.logId}, ${new Date()})
          ON CONFLICT (projection) DO NOTHING)
        SELECT set_config('synchronous_commit', 'off', true) AS relaxed,
               (SELECT next_offset FROM projection_checkpoints
                 WHERE projection = ${PRISMA_PROJECTION} AND topic = ${topic} AND partition = ${partition}
                   FOR UPDATE) AS next_offset,
               i.cluster_id, i.topic, i.partitions, i.log_id
          FROM (SELECT 1) AS one LEFT JOIN log_identities i ON i.projection = ${PRISMA_PROJECTION}`
    : await tx.$queryRaw<Row[]>`
        SELECT set_config('synchronous_commit', 'off', true) AS relaxed,
               (SELECT next_offset FROM projection_checkpoints
                 WHERE projection = ${PRISMA_PROJECTION} AND topic = ${topic} AND partition = ${partition}
                   FOR UPDATE) AS next_offset,
               NULL::text AS cluster_id, NULL::text AS topic, NULL::int AS partitions, NULL::text AS log_id`;
  const r = rows[0];
  const next = r?.next_offset;
  const recorded =
    r?.cluster_id && r.topic !== null && r.partitions !== null
      ? { clusterId: r.cluster_id, topic: r.topic, partitions: Number(r.partitions), logId: r.log_id }
      : null;
  return { next: next === null || next === undefined ? 0n : BigInt(next), recorded };
}

export async function saveCheckpoint(tx: Tx, topic: string, partition: number, nextOffset: bigint): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO projection_checkpoints (projection, topic, partition, next_offset, updated_at)
    VALUES (${PRISMA_PROJECTION}, ${topic}, ${partition}, ${nextOffset}, ${new Date()})
    ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at`;
}

/**
 * Rewinds the Prisma projection so the projector rebuilds it from the log: in one transaction,
 * deletes one campaign's rows (or every row when `campaignId` is null) and sets the checkpoint of
 * its partition (or of every partition of `topic`) back to 0. The running projector notices on its
 * next batch or within a second, seeks to 0 and re-applies the log; other campaigns of the same
 * partition are left as they are.
 *
 * With `partitions` (the topic's partition count, EVENT_PARTITIONS) only the campaign's own
 * partition is rewound; without it every partition of the topic is (correct, but re-reads more).
 * campaign_reports is not touched.
 */
export async function rewindPrismaProjection(
  prisma: PrismaClient,
  topic: string,
  campaignId: string | null,
  opts: { partitions?: number } = {},
): Promise<{ partitions: number[] }> {
  const only = campaignId !== null && opts.partitions ? partitionFor(campaignId, opts.partitions) : null;
  return prisma.$transaction(
    async (tx) => {
      // the checkpoint rows first, in order: the projector locks its row first too, so neither waits on the other in a cycle
      const locked =
        only === null
          ? await tx.$queryRaw<{ partition: number }[]>`
              SELECT partition FROM projection_checkpoints WHERE projection = ${PRISMA_PROJECTION} AND topic = ${topic}
               ORDER BY partition FOR UPDATE`
          : await tx.$queryRaw<{ partition: number }[]>`
              SELECT partition FROM projection_checkpoints WHERE projection = ${PRISMA_PROJECTION} AND topic = ${topic} AND partition = ${only}
                 FOR UPDATE`;
      const where = campaignId === null ? {} : { campaignId };
      await tx.lineHead.deleteMany({ where });
      await tx.gifticon.deleteMany({ where });
      await tx.winner.deleteMany({ where });
      await tx.entry.deleteMany({ where });
      await tx.campaign.deleteMany({ where: campaignId === null ? {} : { id: campaignId } });
      const now = new Date();
      await tx.projectionCheckpoint.updateMany({
        where: { projection: PRISMA_PROJECTION, topic, ...(only === null ? {} : { partition: only }) },
        data: { nextOffset: 0n, updatedAt: now },
      });
      // heard by the projectors' hosts when this commits (listenForRewinds): they seek at once
      await tx.$executeRaw`SELECT pg_notify(${REWIND_CHANNEL}, ${topic})`;
      return { partitions: locked.map((r) => Number(r.partition)) };
    },
    { timeout: 120_000, maxWait: 30_000 },
  );
}
