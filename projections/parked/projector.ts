import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config.js';
import { keepConsuming, roleConsumer } from '../../src/infra/kafka/consumer.js';
import type { ParkedRecord } from '../../src/infra/kafka/parking.js';
import type { PrismaClient } from '../../src/infra/prisma/client.js';
import { logger } from '../../src/logger.js';

const log = logger.child({ role: 'projector', projection: 'parked-records' });

export const parkedGroup = (config: Pick<Config, 'TOPIC_PREFIX'>) => `${config.TOPIC_PREFIX}.parked-records`;

/**
 * The list of parked records (`parked_records`), from the dead-letter topic. A record parked twice
 * (a consumer that read it again before its offset commit) keeps its first row: the id is its place.
 * One parked again after a successful retry goes back to PARKED.
 */
export class ParkedProjector {
  private runner: ReturnType<typeof keepConsuming> | null = null;
  private joined = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly kafka: Kafka,
    private readonly config: Pick<Config, 'topics' | 'TOPIC_PREFIX'>,
  ) {}

  ready(): boolean {
    return this.joined;
  }

  async start(): Promise<void> {
    const topic = this.config.topics.parked;
    this.runner = keepConsuming('parked-records', async () => {
      const consumer = roleConsumer(this.kafka, parkedGroup(this.config), 500);
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        // the topic is small and every write here is idempotent: each start reads it all again, so a
        // table created anew (db:migrate repairing a dropped one) fills up again
        for (const partition of e.payload.memberAssignment[topic] ?? []) consumer.seek({ topic, partition, offset: '0' });
        this.joined = true;
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachBatch: async ({ batch }) => {
          const rows = batch.messages.flatMap((m) => {
            const r = parse(m.value);
            if (!r) log.warn({ offset: m.offset }, 'a record of the parked topic is not a parked record: skipped');
            return r ? [r] : [];
          });
          if (rows.length === 0) return;
          await this.prisma.parkedRecord.createMany({
            data: rows.map((r) => ({
              id: r.id,
              consumer: r.consumer,
              reason: r.reason,
              error: r.error,
              topic: r.topic,
              partition: r.partition,
              logOffset: BigInt(r.offset),
              key: r.key,
              raw: r.raw,
              parkedAt: new Date(r.parkedAt),
            })),
            skipDuplicates: true,
          });
          // an event parked again by its processor after a retry (a rebuild met it and it still
          // fails) is back in the list; a foreign record met again (a replay) is the same record
          for (const r of rows.filter((x) => x.reason === 'unapplied' || x.reason === 'provider')) {
            await this.prisma.parkedRecord.updateMany({
              where: { id: r.id, status: 'RETRIED', retriedAt: { lt: new Date(r.parkedAt) } },
              data: { status: 'PARKED', error: r.error, parkedAt: new Date(r.parkedAt) },
            });
          }
        },
      });
      return consumer;
    });
    await this.runner.ready;
  }

  async stop(): Promise<void> {
    await this.runner?.stop();
    this.runner = null;
  }
}

function parse(value: Buffer | null): ParkedRecord | null {
  if (!value) return null;
  try {
    const r = JSON.parse(value.toString('utf8')) as ParkedRecord;
    const ok =
      typeof r.id === 'string' &&
      typeof r.consumer === 'string' &&
      (r.reason === 'foreign' || r.reason === 'unapplied' || r.reason === 'provider') &&
      typeof r.partition === 'number' &&
      /^\d+$/.test(String(r.offset)) &&
      !Number.isNaN(Date.parse(r.parkedAt));
    return ok ? r : null;
  } catch {
    return null;
  }
}
