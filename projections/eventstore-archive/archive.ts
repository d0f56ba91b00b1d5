import { WrongExpectedVersionError, type EventStoreDBClient } from '@eventstore/db-client';
import type { Logged } from '../../src/domain/events.js';
import {
  appendToCampaign,
  readCampaignEvents,
  streamOf,
  streamTail,
  type ArchiveLog,
  type StreamTail,
} from '../../src/infra/eventstore/eventStore.js';
import type { Handled, Processor, ProcessorBatch } from '../../src/read-side/processor.js';
import { compareIdentity, identityKey, mismatchOf, parseIdentityKey, type LogIdentity } from '../../src/infra/kafka/logIdentity.js';
import { Checkpoints } from '../../src/infra/prisma/checkpoints.js';
import type { PrismaClient } from '../../src/infra/prisma/client.js';
import { unwatched, type HealthReporter } from '../../src/health.js';
import { logger } from '../../src/logger.js';
import type { Lag } from '../lag.js';

export const ARCHIVE_PROJECTION = 'eventstore-archive';

const log = logger.child({ role: 'projector', projection: ARCHIVE_PROJECTION });

/**
 * The EventStoreDB archive: every committed event of the log, appended to its campaign's stream
 * `campaign-<id>` in log order. At least once: its checkpoint is saved after the append, and a
 * re-delivered event is a no-op twice over: the archive appends only events past the stream's last
 * archived log offset, with the exact expected revision, and the event ids are deterministic
 * (UUID v5 of the eventId), so ESDB's idempotence check recognises a repeated append.
 */
export class EventStoreArchive implements Processor {
  readonly name = ARCHIVE_PROJECTION;
  /** campaign → where its stream stands, known since our last append or read */
  private readonly tails = new Map<string, StreamTail>();
  readonly stats = { batches: 0, appended: 0 };
  private readonly saved: Checkpoints;
  private readonly log: ArchiveLog | undefined;
  private readonly identity: LogIdentity | null;

  constructor(
    private readonly client: EventStoreDBClient,
    prisma: PrismaClient,
    topic: string,
    private readonly lag: Lag,
    /** told when batches fail and when they work again (/readyz) */
    readonly health: HealthReporter = unwatched,
    logIdentity: LogIdentity | null = null,
  ) {
    this.saved = new Checkpoints(prisma, ARCHIVE_PROJECTION, topic, logIdentity);
    this.log = logIdentity ? { tag: identityKey(logIdentity), logId: logIdentity.logId } : undefined;
    this.identity = logIdentity;
  }

  canHandle(): boolean {
    return true;
  }

  checkpoints(partitions: readonly number[]): Promise<Map<number, bigint>> {
    return this.saved.read(partitions);
  }

  assigned(partitions: readonly number[]): void {
    this.lag.retain(partitions);
    // another member may have archived these partitions' campaigns in the meantime
    this.tails.clear();
  }

  observe(partition: number, at: { high?: string; next?: bigint }): void {
    this.lag.observe(partition, at);
  }

  async handle(batch: ProcessorBatch): Promise<Handled> {
    await this.archive(batch.events);
    await this.saved.save(batch.partition, batch.next);
    if (batch.events.length > 0) this.stats.batches++;
    return { kind: 'handled' };
  }

  async stop(): Promise<void> {
    await this.client.dispose();
  }

  /** Appends a batch of one partition, one append per campaign (hot path: not one per event). */
  async archive(logged: readonly Logged[]): Promise<void> {
    const byCampaign = new Map<string, Logged[]>();
    for (const l of logged) {
      const list = byCampaign.get(l.event.campaignId);
      if (list) list.push(l);
      else byCampaign.set(l.event.campaignId, [l]);
    }
    for (const [campaignId, events] of byCampaign) await this.appendCampaign(campaignId, events, true);
  }

  private async appendCampaign(campaignId: string, events: Logged[], retry: boolean): Promise<void> {
    let tail = this.tails.get(campaignId);
    if (!tail) {
      tail = await streamTail(this.client, campaignId);
      this.tails.set(campaignId, tail);
    }
    // a stream of another log: its offsets say nothing of this one, and appending would mix two logs in it
    const theirs = tail.log === null ? null : parseIdentityKey(tail.log);
    if (this.identity && theirs) {
      const v = compareIdentity(theirs, this.identity);
      if (v.kind === 'other') throw mismatchOf(`the EventStoreDB stream ${streamOf(campaignId)}`, v);
    }
    const since = tail.offset;
    const fresh = events.filter((l) => l.offset > since);
    if (fresh.length === 0) return;
    try {
      const r = await appendToCampaign(this.client, campaignId, fresh, tail.revision, this.log);
      this.tails.set(campaignId, { revision: r.nextExpectedRevision, offset: fresh.at(-1)!.offset, log: this.log?.tag ?? null });
      this.stats.appended += fresh.length;
    } catch (err) {
      this.tails.delete(campaignId);
      if (!(err instanceof WrongExpectedVersionError) || !retry) throw err;
      // someone else appended (a member that held the partition before us): look again
      log.info({ campaignId }, 'archive stream moved under us: reading its tail again');
      await this.appendCampaign(campaignId, events, false);
    }
  }
}

/** A campaign's events from the archive, in log order: a replay's source when Kafka is not. */
export { readCampaignEvents };
