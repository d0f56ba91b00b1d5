import type { PrismaClient } from '../../src/infra/prisma/client.js';
import { PRISMA_PROJECTION } from './projector.js';

/**
 * What the read model knows of the campaigns Redis must hold (open, or closed since `since`), and
 * how far into each partition it knows it: read in one statement, so in one snapshot (a replay's
 * rewind deletes the rows and sets the checkpoint back in one transaction). A campaign created at
 * or past `checkpoint` is not in the rows yet. Null when the partition has no checkpoint.
 */
export async function liveCampaigns(
  prisma: PrismaClient,
  topic: string,
  partition: number,
  since: Date,
): Promise<{ checkpoint: bigint; campaigns: { id: string; createdAt: Date }[] } | null> {
  const rows = await prisma.$queryRaw<{ checkpoint: bigint; id: string | null; created_at: Date | null }[]>`
    SELECT k.next_offset AS checkpoint, c.id, c.created_at
      FROM projection_checkpoints k
      LEFT JOIN campaigns c ON (c.closed_at IS NULL AND c.closes_at > ${since}) OR c.closed_at > ${since}
     WHERE k.projection = ${PRISMA_PROJECTION} AND k.topic = ${topic} AND k.partition = ${partition}`;
  if (rows.length === 0) return null;
  return {
    checkpoint: BigInt(rows[0]!.checkpoint),
    campaigns: rows.flatMap((r) => (r.id !== null && r.created_at !== null ? [{ id: r.id, createdAt: r.created_at }] : [])),
  };
}
