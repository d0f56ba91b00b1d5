import type { Agenda } from 'agenda';
import type { CampaignEvent } from '../src/domain/events.js';
import type { Handled, Processor, ProcessorBatch } from '../src/read-side/processor.js';
import { identityKey, type LogIdentity } from '../src/infra/kafka/logIdentity.js';
import type { ReadSideFactory } from '../src/plugin.js';
import { Checkpoints } from '../src/infra/prisma/checkpoints.js';
import type { PrismaClient } from '../src/infra/prisma/client.js';
import { unwatched, type HealthReporter } from '../src/health.js';
import { logger, type Logger } from '../src/logger.js';
import { openAgenda } from './agenda.js';
import type { CloseData } from './close.js';
import type { ReportData } from './report.js';

/** The processor's name in parked records and `projection_checkpoints`. */
export const TRIGGERS = 'batch-triggers';

/**
 * What the log asks of the batch worker: CampaignCreated schedules the `close` job at closesAt;
 * CampaignSoldOut and CampaignClosed queue a report, counted once the read model has reached that
 * event. Jobs are unique per campaign (and trigger), so reading an event again (a rebalance, a
 * restart before the checkpoint was saved) queues nothing twice.
 */
export class Triggers implements Processor {
  readonly name = TRIGGERS;
  private readonly saved: Checkpoints;
  /** the log the jobs it queues are for (`LogStamped`) */
  private readonly stamp: { log?: string };

  constructor(
    private readonly agenda: Agenda,
    prisma: PrismaClient,
    topic: string,
    private readonly log: Logger,
    /** told when batches fail and when they work again (/readyz) */
    readonly health: HealthReporter = unwatched,
    logIdentity: LogIdentity | null = null,
  ) {
    this.saved = new Checkpoints(prisma, TRIGGERS, topic, logIdentity);
    this.stamp = logIdentity ? { log: identityKey(logIdentity) } : {};
  }

  canHandle(event: CampaignEvent): boolean {
    return event.type === 'CampaignCreated' || event.type === 'CampaignSoldOut' || event.type === 'CampaignClosed';
  }

  checkpoints(partitions: readonly number[]): Promise<Map<number, bigint>> {
    return this.saved.read(partitions);
  }

  async handle(batch: ProcessorBatch): Promise<Handled> {
    for (const l of batch.events) await this.on(l.event, batch.partition, l.offset);
    await this.saved.save(batch.partition, batch.next);
    return { kind: 'handled' };
  }

  private async on(event: CampaignEvent, partition: number, offset: bigint): Promise<void> {
    switch (event.type) {
      case 'CampaignCreated': {
        const data: CloseData = { campaignId: event.campaignId, ...this.stamp };
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
        const data: ReportData = {
          campaignId: event.campaignId,
          trigger,
          until: { partition, offset: String(offset + 1n) },
          ...this.stamp,
        };
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
}

/**
 * The worker role's processor of the consumer host. The triggers only create jobs, so they have a
 * queue of their own that runs none (as the API's): it works wherever the host runs, beside the
 * worker's Agenda or in the read side's thread, and announces each job so a worker starts it at once.
 */
export const triggerProcessors: ReadSideFactory = async ({ config, prisma, health, instance, logIdentity }) => {
  const queue = await openAgenda(config.DATABASE_URL, {
    name: `triggers-${instance}`,
    poolSize: 2,
    notify: true,
    logTag: identityKey(logIdentity),
  });
  const log = logger.child({ role: 'worker' });
  return {
    processors: [new Triggers(queue.agenda, prisma, config.topics.events, log, health.reporter('worker/triggers'), logIdentity)],
    stop: () => queue.close(),
  };
};
