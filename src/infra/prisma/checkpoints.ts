import type { PrismaClient } from './client.js';

/**
 * The checkpoints of a processor that is at least once (its work is idempotent, so a re-delivery
 * after a crash costs time, not correctness): one row per processor, topic and partition in
 * `projection_checkpoints`, written after the work. The Prisma tables keep theirs in the same
 * table, but inside their own transaction.
 */
export class Checkpoints {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly processor: string,
    private readonly topic: string,
  ) {}

  async read(partitions: readonly number[]): Promise<Map<number, bigint>> {
    const rows = await this.prisma.projectionCheckpoint.findMany({
      where: { projection: this.processor, topic: this.topic, partition: { in: [...partitions] } },
      select: { partition: true, nextOffset: true },
    });
    return new Map(rows.map((r) => [r.partition, r.nextOffset]));
  }

  async save(partition: number, nextOffset: bigint): Promise<void> {
    const key = { projection: this.processor, topic: this.topic, partition };
    const updatedAt = new Date();
    await this.prisma.projectionCheckpoint.upsert({
      where: { projection_topic_partition: key },
      create: { ...key, nextOffset, updatedAt },
      update: { nextOffset, updatedAt },
    });
  }
}
