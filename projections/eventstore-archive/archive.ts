import { WrongExpectedVersionError, type EventStoreDBClient } from '@eventstore/db-client';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Config } from '../../src/config.js';
import type { Logged } from '../../src/domain/events.js';
import { appendToCampaign, readCampaignEvents, streamTail, type StreamTail } from '../../src/infra/eventstore/eventStore.js';
import { keepConsuming, roleConsumer } from '../../src/infra/kafka/consumer.js';
import { sortBatch, Stops, type Parking } from '../../src/infra/kafka/parking.js';
import { unwatched, type HealthReporter } from '../../src/health.js';
import { logger } from '../../src/logger.js';
import type { Lag } from '../lag.js';

export const ARCHIVE_PROJECTION = 'eventstore-archive';

const log = logger.child({ role: 'projector', projection: ARCHIVE_PROJECTION });

/**
 * The EventStoreDB archive: every committed event of the log, appended to its campaign's stream
 * `campaign-<id>` in log order. Its own consumer group; Kafka offsets are committed after the
 * append (at least once), and a re-delivered event is a no-op twice over: the archive appends only
 * events past the stream's last archived log offset, with the exact expected revision, and the
 * event ids are deterministic (UUID v5 of the eventId), so ESDB's idempotence check recognises a
 * repeated append.
 */
export class EventStoreArchive {
  private runner: ReturnType<typeof keepConsuming> | null = null;
  private joined = false;
  /** campaign → where its stream stands, known since our last append or read */
  private readonly tails = new Map<string, StreamTail>();
  readonly stats = { batches: 0, appended: 0 };
  /** told when batches fail and when they work again (/readyz) */
  health: HealthReporter = unwatched;
  readonly stops = new Stops(ARCHIVE_PROJECTION, () => this.health);
  private consumer: Consumer | null = null;

  constructor(
    private readonly client: EventStoreDBClient,
    private readonly kafka: Kafka,
    private readonly config: Pick<Config, 'topics' | 'groups'>,
    private readonly lag: Lag,
    private readonly parking: Parking,
  ) {}

  get topic(): string {
    return this.config.topics.events;
  }

  ready(): boolean {
    return this.joined && this.stops.size === 0;
  }

  async start(): Promise<void> {
    this.runner = keepConsuming('eventstore-archive', async (guard) => {
      const consumer = roleConsumer(this.kafka, this.config.groups.archive, 500);
      this.consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        this.lag.retain(e.payload.memberAssignment[this.topic] ?? []);
        this.stops.retain(e.payload.memberAssignment[this.topic] ?? []);
        // another member may have archived these partitions' campaigns in the meantime
        this.tails.clear();
        this.joined = true;
      });
      consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
        const { topic, partition, highWatermark, lastOffset } = e.payload;
        if (topic === this.topic) this.lag.observe(partition, { high: highWatermark, next: BigInt(lastOffset) + 1n });
      });
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: true,
        // resolved by hand: a partition stopped at a newer event must not be resolved past it
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 4,
        eachBatch: guard((payload) => this.onBatch(payload)),
      });
      return consumer;
    }, { health: this.health });
    await this.runner.ready;
  }

  async stop(): Promise<void> {
    await this.runner?.stop();
    this.runner = null;
    await this.client.dispose();
  }

  private async onBatch({ batch, isRunning, isStale, heartbeat, resolveOffset }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    // before the append, so a stuck archive (ESDB down) shows how far behind it is
    const first = batch.firstOffset();
    if (first !== null) this.lag.observe(batch.partition, { high: batch.highWatermark, next: BigInt(first) });
    const sorted = sortBatch(ARCHIVE_PROJECTION, this.topic, batch.partition, batch.messages, { lastOffset: batch.lastOffset() });
    await this.parking.park(sorted.parked);
    await this.archive(sorted.logged);
    if (sorted.last !== null) resolveOffset(String(sorted.last));
    if (sorted.stop) this.stops.stop(this.consumer, this.topic, sorted.stop);
    this.stats.batches++;
    await heartbeat();
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
    const since = tail.offset;
    const fresh = events.filter((l) => l.offset > since);
    if (fresh.length === 0) return;
    try {
      const r = await appendToCampaign(this.client, campaignId, fresh, tail.revision);
      this.tails.set(campaignId, { revision: r.nextExpectedRevision, offset: fresh.at(-1)!.offset });
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
