import type { Admin, Kafka } from 'kafkajs';
import type { PrismaClient } from '../src/infra/prisma/client.js';
import { PRISMA_PROJECTION } from '../projections/prisma-tables/projector.js';

/** Where the log ends and how far its readers got: what replay and report jobs wait for. */

export async function withAdmin<T>(kafka: Kafka, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** partition → high watermark (the offset the next record will get) */
export async function highWatermarks(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  const out = new Map<number, bigint>();
  for (const o of await admin.fetchTopicOffsets(topic)) out.set(o.partition, BigInt(o.high));
  return out;
}

/** partition → next offset a consumer group will read (0 when it has committed nothing) */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const out = new Map<number, bigint>();
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  for (const p of t?.partitions ?? []) out.set(p.partition, Number(p.offset) >= 0 ? BigInt(p.offset) : 0n);
  return out;
}

/** partition → next offset the Prisma projection will apply (its checkpoint rows) */
export async function prismaCheckpoints(prisma: PrismaClient, topic: string): Promise<Map<number, bigint>> {
  const rows = await prisma.projectionCheckpoint.findMany({ where: { projection: PRISMA_PROJECTION, topic } });
  return new Map(rows.map((r) => [r.partition, r.nextOffset]));
}

/**
 * Whether a reader has read a partition up to `end` (a high watermark), for a reader that may stop
 * one short: the last record of a partition is often the commit marker of the single
 * writer's transaction, which no reader is handed (KafkaJS filters control records). The writer stays one
 * short; the Prisma projector moves its checkpoint past such a marker once idle (within a second),
 * so waits on it use `next >= end`.
 */
export function nearlyReached(next: bigint, end: bigint): boolean {
  return next >= end - 1n;
}
