import type { Kafka, Producer, Transaction } from 'kafkajs';
import type { Config } from '../config.js';
import type { CampaignEvent } from '../domain/events.js';
import { toPackedMessages } from '../infra/kafka/codec.js';
import { compressionType } from '../infra/kafka/compression.js';
import { unwatched, type HealthReporter } from '../health.js';
import type { Logger } from '../logger.js';
import type { DecisionSink } from './ports.js';

/**
 * Decisions into the log with KafkaJS: one transactional producer per input partition (KafkaJS has
 * no KIP-447, so the transactional id is what fences a zombie writer of that partition). A commit's
 * decisions go as one packed record per campaign (see `toPackedMessages`).
 */
export class KafkaDecisionSink implements DecisionSink {
  private readonly producers = new Map<number, Promise<Producer>>();
  stopping = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Pick<Config, 'topics' | 'groups' | 'EVENT_PARTITIONS' | 'KAFKA_COMPRESSION'>,
    private readonly log: Logger,
    private readonly health: () => HealthReporter = () => unwatched,
    /** the consumer group whose offsets its transactions commit, and the stem of its transactional ids */
    private readonly group: string = config.groups.writer,
  ) {}

  private get topic() {
    return this.config.topics.events;
  }

  async commit(p: number, outputs: readonly CampaignEvent[], nextOffset: bigint): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const producer = await this.producer(p);
      let tx: Transaction | null = null;
      try {
        tx = await producer.transaction();
        // The offsets go first: from the decisions' first record until the commit marker, the
        // partition's last stable offset stays below them, and every reader of committed events,
        // this writer included, sees no entry appended after it. Sent last, only the produce and
        // the commit hold the line up, not the two round trips of the offsets too.
        await tx.sendOffsets({
          consumerGroupId: this.group,
          topics: [{ topic: this.topic, partitions: [{ partition: p, offset: nextOffset.toString() }] }],
        });
        if (outputs.length > 0) {
          await tx.send({
            topic: this.topic,
            acks: -1,
            compression: compressionType(this.config.KAFKA_COMPRESSION),
            messages: toPackedMessages(outputs, this.config.EVENT_PARTITIONS),
          });
        }
        await tx.commit();
        return;
      } catch (err) {
        await tx?.abort().catch(() => undefined);
        // KafkaJS does not retry CONCURRENT_TRANSACTIONS itself (FACTS.md)
        if ((err as { type?: string }).type === 'CONCURRENT_TRANSACTIONS' && attempt < 5) {
          await new Promise((r) => setTimeout(r, 50 * attempt));
          continue;
        }
        // a producer that lost its broker mid-transaction, or was fenced, is stuck (ABORTING): the
        // next one re-initialises the transactional id (see `settle`)
        await this.reset([p]);
        throw err;
      }
    }
  }

  /**
   * The transactional ids are initialised anew first: the coordinator then completes a transaction
   * that was prepared and aborts one that was not, and fences its producer; only after that does
   * the group's committed offset tell the truth.
   */
  async settle(partitions: readonly number[]): Promise<Map<number, bigint>> {
    for (let attempt = 1; ; attempt++) {
      try {
        // the first transaction of a new producer sends InitProducerId; an empty one ends without a request
        await Promise.all(partitions.map(async (p) => (await (await this.producer(p)).transaction()).abort()));
        const admin = this.kafka.admin();
        await admin.connect();
        try {
          const [group] = await admin.fetchOffsets({ groupId: this.group, topics: [this.topic] });
          const offsets = new Map<number, bigint>();
          for (const c of group?.partitions ?? []) if (Number(c.offset) >= 0) offsets.set(c.partition, BigInt(c.offset));
          this.health().ok('settle');
          return offsets;
        } finally {
          await admin.disconnect();
        }
      } catch (err) {
        if (this.stopping) throw err;
        await this.reset(partitions);
        this.health().failing(err, 'settle');
        this.log.warn({ err, partitions, attempt }, 'settling partitions failed: retrying');
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempt)));
      }
    }
  }

  async reset(partitions: readonly number[] = [...this.producers.keys()]): Promise<void> {
    await Promise.all(
      partitions.map(async (p) => {
        const producer = this.producers.get(p);
        this.producers.delete(p);
        await producer?.then((pr) => pr.disconnect()).catch(() => undefined);
      }),
    );
  }

  private producer(partition: number): Promise<Producer> {
    let p = this.producers.get(partition);
    if (!p) {
      const producer = this.kafka.producer({
        // the name on the broker keeps its first stem (`.decider`): a running log keeps its fencing across versions
        transactionalId: `${this.group}.${this.topic}.p${partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // The first send of a transaction meets CONCURRENT_TRANSACTIONS while the broker still writes
        // the previous commit's markers; KafkaJS's default first backoff (300 ms) made a transaction
        // take ~70 ms, a 5 ms one ~11 ms (bench: 60 transactions of 2 messages + offsets + commit).
        retry: { initialRetryTime: 5, retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 2000 },
      });
      p = producer.connect().then(() => producer);
      p.catch(() => this.producers.delete(partition));
      this.producers.set(partition, p);
    }
    return p;
  }
}
