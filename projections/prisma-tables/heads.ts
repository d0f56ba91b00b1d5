import type { Prisma } from '../../src/infra/prisma/client.js';
import type { HeadRow } from './plan.js';

/** Signed line heads into `line_heads`; a head read again (a replay, a rerun batch) is the same row and is skipped. */
export async function writeHeads(tx: Prisma.TransactionClient, heads: readonly HeadRow[]): Promise<void> {
  await tx.lineHead.createMany({ data: heads.map((h) => ({ ...h })), skipDuplicates: true });
}
