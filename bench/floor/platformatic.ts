import { Producer, type MessageToProduce } from '@platformatic/kafka';
import type { Message } from 'kafkajs';
import type { Config } from '../../src/config.js';
import type { CampaignEvent } from '../../src/domain/events.js';
import type { Appended } from '../../src/infra/kafka/appender.js';
import { toMessage } from '../../src/infra/kafka/codec.js';

/**
 * The floor's log path on @platformatic/kafka (1.35.0, the last release for Node 20), built the way
 * src/infra/kafka does it on KafkaJS, so the rungs compare the clients and nothing else: the same
 * records (codec.ts), the same codec, acks from all in-sync replicas, an idempotent producer, and
 * the API's group commit (`APPEND_LINGER_MS`, one request in flight, at most 1,000 records).
 */

export type Record = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

/** A record of codec.ts (KafkaJS's shape) as @platformatic/kafka takes it. */
export function toRecord(m: Message & { partition: number }, topic: string): Record {
  const headers = new Map<Buffer, Buffer>();
  for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) headers.set(Buffer.from(k), Buffer.from(String(v)));
  return {
    topic,
    partition: m.partition,
    key: m.key === null || m.key === undefined ? undefined : Buffer.from(m.key),
    value: Buffer.from(m.value as string | Buffer),
    headers,
  } as Record;
}

export const brokersOf = (config: Pick<Config, 'KAFKA_BROKERS'>) => [...config.KAFKA_BROKERS];

interface Pending {
  record: Record;
  resolve: (a: Appended) => void;
  reject: (e: unknown) => void;
}

/** EventAppender's group commit over a @platformatic/kafka idempotent producer. */
export class PlatformaticAppender {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private producer: Producer;
  private broken = false;

  constructor(
    private readonly config: Pick<Config, 'KAFKA_BROKERS' | 'topics' | 'EVENT_PARTITIONS' | 'APPEND_LINGER_MS' | 'KAFKA_COMPRESSION'>,
    private readonly maxBatch = 1000,
  ) {
    this.producer = this.newProducer();
  }

  private newProducer(): Producer {
    return new Producer({
      clientId: 'floor-appender',
      bootstrapBrokers: brokersOf(this.config),
      idempotent: true,
      acks: -1,
      compression: this.config.KAFKA_COMPRESSION as never,
      autocreateTopics: false,
    });
  }

  append(event: CampaignEvent): Promise<Appended> {
    return new Promise((resolve, reject) => {
      this.pending.push({ record: toRecord(toMessage(event, this.config.EVENT_PARTITIONS), this.config.topics.events), resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.timer && this.inFlight === 0) this.timer = setTimeout(() => this.flush(), this.config.APPEND_LINGER_MS);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.maxBatch);
    this.inFlight++;
    void this.send(batch).finally(() => {
      this.inFlight--;
      if (this.pending.length > 0 && this.inFlight === 0) this.flush();
    });
  }

  private async send(batch: Pending[]): Promise<void> {
    try {
      if (this.broken) {
        await this.producer.close().catch(() => undefined);
        this.producer = this.newProducer();
        this.broken = false;
      }
      const r = await this.producer.send({ messages: batch.map((p) => p.record) });
      // one record batch per partition, in the order given: the base offset of each
      const base = new Map((r.offsets ?? []).map((o) => [o.partition, BigInt(o.offset)]));
      const seen = new Map<number, bigint>();
      for (const p of batch) {
        const k = p.record.partition!;
        const i = seen.get(k) ?? 0n;
        seen.set(k, i + 1n);
        const b = base.get(k);
        if (b === undefined) p.reject(new Error(`no offset returned for partition ${k}`));
        else p.resolve({ partition: k, offset: b + i });
      }
    } catch (err) {
      // as EventAppender: a failed batch's sequence numbers must not pass to the next one
      this.broken = true;
      for (const p of batch) p.reject(err);
    }
  }

  async close(): Promise<void> {
    while (this.pending.length > 0 || this.inFlight > 0) {
      this.flush();
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.producer.close();
  }
}
