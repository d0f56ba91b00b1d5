import type { LogIdentity } from '../kafka/logIdentity.js';
import type { Prisma, PrismaClient } from './client.js';
import { adoptIdentity } from './logIdentities.js';

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
    /** the log this process follows: recorded (log_identities) with the first checkpoint when none is */
    private readonly logIdentity: LogIdentity | null = null,
  ) {}

  private adopted = false;

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
    const upsert = (tx: PrismaClient | Prisma.TransactionClient) =>
      tx.projectionCheckpoint.upsert({
        where: { projection_topic_partition: key },
        create: { ...key, nextOffset, updatedAt },
        update: { nextOffset, updatedAt },
      });
    const identity = this.logIdentity;
    if (this.adopted || !identity) {
      await upsert(this.prisma);
      return;
    }
    await this.prisma.$transaction(async (tx) => {
      await adoptIdentity(tx, this.processor, identity);
      await upsert(tx);
    });
    this.adopted = true;
  }
}
