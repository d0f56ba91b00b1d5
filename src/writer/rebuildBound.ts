import type { Admin, Kafka } from 'kafkajs';
import type { Config } from '../config.js';
import { partitionFor } from '../infra/kafka/partitioning.js';
import type { PrismaClient } from '../infra/prisma/client.js';
import { liveCampaigns } from '../../projections/prisma-tables/liveCampaigns.js';
import type { RebuildBound } from './ports.js';

/** No bound: every rebuild replays its partition from offset 0. */
export const fromOffsetZero: RebuildBound = { startOf: async () => 0n };

/**
 * How far a record's timestamp may fall behind its event's `occurredAt`. The appender's client
 * stamps a record when it sends it, after the API set `occurredAt` on the same clock, so only a
 * clock stepped back in between (NTP) makes the record older.
 */
export const CLOCK_SLACK_MS = 1_000;

/**
 * The rebuild bound from stores that outlive a Redis loss: the Postgres read model says which
 * campaigns are still live and when each was created, and the log's own time index
 * (ListOffsets by timestamp) gives the first offset at or after that time, at or below the
 * campaign's CampaignCreated. Campaigns the read model has not seen yet are past its checkpoint,
 * so the bound is never above it either.
 */
export class ReadModelRebuildBound implements RebuildBound {
  private admin: Promise<Admin> | null = null;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly kafka: Kafka,
    private readonly config: Config,
  ) {}

  async startOf(partition: number, until: bigint): Promise<bigint> {
    const topic = this.config.topics.events;
    const since = new Date(Date.now() - this.config.REDIS_RETENTION_HOURS * 3_600_000);
    const read = await liveCampaigns(this.prisma, topic, partition, since);
    if (!read) return 0n;
    let start = read.checkpoint < until ? read.checkpoint : until;
    const mine = read.campaigns.filter((c) => partitionFor(c.id, this.config.EVENT_PARTITIONS) === partition);
    if (mine.length === 0) return start;
    const oldest = Math.min(...mine.map((c) => c.createdAt.getTime()));
    const admin = await (this.admin ??= this.connect());
    const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, oldest - CLOCK_SLACK_MS);
    const at = BigInt(offsets.find((o) => o.partition === partition)?.offset ?? '0');
    if (at < start) start = at;
    return start;
  }

  private async connect(): Promise<Admin> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
    } catch (err) {
      this.admin = null;
      throw err;
    }
    return admin;
  }

  async close(): Promise<void> {
    const admin = await this.admin?.catch(() => null);
    this.admin = null;
    await admin?.disconnect().catch(() => undefined);
  }
}
