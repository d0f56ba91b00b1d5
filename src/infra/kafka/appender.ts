import type { CompressionTypes, Kafka, Message, Producer } from 'kafkajs';
import type { Config } from '../../config.js';
import type { CampaignEvent } from '../../domain/events.js';
import type { Timing } from '../../metrics.js';
import { toMessage } from './codec.js';
import { compressionType } from './compression.js';

export interface Appended {
  partition: number;
  offset: bigint;
}

interface Pending {
  message: Message & { partition: number };
  resolve: (a: Appended) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit. Hot path: KafkaJS sends one request per `send`, ~2k msg/s when awaited one by one,
 * 24k+/s in batches of 100 (FACTS.md). Appends wait at most `lingerMs`, or for the request in flight,
 * and go out together in one `sendBatch` with acks from all in-sync replicas.
 */
export class EventAppender {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private closed = false;
  /** set by a failed send: the next one goes out on a new producer */
  private broken = false;
  timing: Timing = () => undefined;

  private constructor(
    private producer: Producer,
    private readonly newProducer: () => Producer,
    private readonly topic: string,
    private readonly partitions: number,
    private readonly lingerMs: number,
    /** one codec per request: a group-committed batch is compressed whole, so bursts compress best */
    private readonly compression: CompressionTypes,
    private readonly maxBatch = 1000,
  ) {}

  static async connect(kafka: Kafka, config: Pick<Config, 'topics' | 'EVENT_PARTITIONS' | 'APPEND_LINGER_MS' | 'KAFKA_COMPRESSION'>) {
    // idempotent producer: KafkaJS retries a send with the same sequence numbers, and the broker
    // drops a retried batch it already holds
    const newProducer = () =>
      kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 2000 },
      });
    const producer = newProducer();
    await producer.connect();
    return new EventAppender(
      producer,
      newProducer,
      config.topics.events,
      config.EVENT_PARTITIONS,
      config.APPEND_LINGER_MS,
      compressionType(config.KAFKA_COMPRESSION),
    );
  }

  append(event: CampaignEvent): Promise<Appended> {
    if (this.closed) return Promise.reject(new Error('event appender is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ message: toMessage(event, this.partitions), resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.timer && this.inFlight === 0) this.timer = setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.maxBatch);
    this.inFlight++;
    void this.send(batch).finally(() => {
      this.inFlight--;
      // whatever queued up behind the request in flight has waited long enough already
      if (this.pending.length > 0 && this.inFlight === 0) this.flush();
    });
  }

  private async send(batch: Pending[]): Promise<void> {
    const started = performance.now();
    try {
      if (this.broken) await this.renew();
      const results = await this.producer.send({
        topic: this.topic,
        acks: -1,
        compression: this.compression,
        messages: batch.map((p) => p.message),
      });
      // KafkaJS writes each partition's messages as one record batch, in the order given
      const base = new Map(results.map((r) => [r.partition, BigInt(r.baseOffset ?? '0')]));
      const seen = new Map<number, bigint>();
      for (const p of batch) {
        const k = p.message.partition;
        const i = seen.get(k) ?? 0n;
        seen.set(k, i + 1n);
        const b = base.get(k);
        if (b === undefined) p.reject(new Error(`no offset returned for partition ${k}`));
        else p.resolve({ partition: k, offset: b + i });
      }
      this.timing('append', (performance.now() - started) / 1000, batch.length);
    } catch (err) {
      // Nothing of this batch is acknowledged, though the broker may hold it (its answer was lost).
      // KafkaJS then hands the batch's sequence numbers to the next send, and the broker takes a
      // next batch of the same size for a retry of this one: it answers with this batch's offsets
      // and drops the new entries. Acknowledged and lost (seen after a broker SIGKILL: three
      // acknowledged entries whose tickets named other users' entries). So a failed send retires
      // its producer; the next one starts a new producer id, whose sequences begin at 0.
      this.broken = true;
      for (const p of batch) p.reject(err);
    }
  }

  private async renew(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
    this.producer = this.newProducer();
    await this.producer.connect();
    this.broken = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.pending.length > 0 || this.inFlight > 0) {
      this.flush();
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.producer.disconnect();
  }
}
