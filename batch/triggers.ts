import type { Agenda } from 'agenda';
import type { Kafka } from 'kafkajs';
import type { Config } from '../src/config.js';
import type { CampaignEvent } from '../src/domain/events.js';
import { keepConsuming, roleConsumer } from '../src/infra/kafka/consumer.js';
import { sortBatch, Stops, type Parking } from '../src/infra/kafka/parking.js';
import { unwatched, type HealthReporter } from '../src/health.js';
import type { Logger } from '../src/logger.js';
import type { CloseData, ReportData } from './agenda.js';

/** The worker's consumer group on the log: it turns facts into jobs. */
export const triggersGroup = (config: Pick<Config, 'TOPIC_PREFIX'>) => `${config.TOPIC_PREFIX}.batch-triggers`;

/**
 * What the log asks of the batch worker: CampaignCreated schedules the `close` job at closesAt;
 * CampaignSoldOut and CampaignClosed queue a report, counted once the read model has reached that
 * event. Jobs are unique per campaign (and trigger), so reading an event again (a rebalance, a
 * restart before the offset commit) queues nothing twice.
 */
export class Triggers {
  private runner: ReturnType<typeof keepConsuming> | null = null;
  private assigned = false;
  /** told when batches fail and when they work again (/readyz) */
  health: HealthReporter = unwatched;
  readonly stops = new Stops('batch-triggers', () => this.health);

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Config,
    private readonly agenda: Agenda,
    private readonly log: Logger,
    private readonly parking: Parking,
  ) {}

  get ready(): boolean {
    return this.assigned && this.stops.size === 0;
  }

  async start(): Promise<void> {
    const topic = this.config.topics.events;
    // rebuilt after a non-retriable crash (a broker gone for longer than the retries), as the decider's
    this.runner = keepConsuming('batch-triggers', async (guard) => {
      const consumer = roleConsumer(this.kafka, triggersGroup(this.config), 500);
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        this.stops.retain(e.payload.memberAssignment[topic] ?? []);
        this.assigned = true;
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        // resolved by hand: a partition stopped at a newer event must not be resolved past it
        eachBatchAutoResolve: false,
        eachBatch: guard(async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          const sorted = sortBatch('batch-triggers', topic, batch.partition, batch.messages, { lastOffset: batch.lastOffset() });
          await this.parking.park(sorted.parked);
          for (const l of sorted.logged) {
            if (!isRunning() || isStale()) return;
            await this.on(l.event, batch.partition, l.offset);
            resolveOffset(String(l.offset));
            await heartbeat();
          }
          if (sorted.last !== null) resolveOffset(String(sorted.last));
          if (sorted.stop) this.stops.stop(consumer, topic, sorted.stop);
        }),
      });
      return consumer;
    }, { health: this.health });
    await this.runner.ready;
  }

  private async on(event: CampaignEvent, partition: number, offset: bigint): Promise<void> {
    switch (event.type) {
      case 'CampaignCreated': {
        const data: CloseData = { campaignId: event.campaignId };
        await this.agenda
          .create('close', data)
          .unique({ 'data.campaignId': event.campaignId }, { insertOnly: true })
          .schedule(new Date(event.closesAt))
          .save();
        break;
      }
      case 'CampaignSoldOut':
      case 'CampaignClosed': {
        const trigger = event.type === 'CampaignSoldOut' ? 'soldout' : 'closed';
        const data: ReportData = { campaignId: event.campaignId, trigger, until: { partition, offset: String(offset + 1n) } };
        const job = await this.agenda
          .create('report', data)
          .unique({ 'data.campaignId': event.campaignId, 'data.trigger': trigger }, { insertOnly: true })
          .save();
        this.log.info({ campaignId: event.campaignId, trigger, jobId: String(job.attrs._id) }, 'report queued');
        break;
      }
      default:
        break;
    }
  }

  async stop(): Promise<void> {
    await this.runner?.stop().catch(() => undefined);
  }
}
