import type { CompressionTypes, Consumer, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Config } from '../../config.js';
import type { Logged } from '../../domain/events.js';
import { unwatched, type HealthReporter } from '../../health.js';
import { logger } from '../../logger.js';
import { compressionType } from './compression.js';
import { decodeMessage, NewerEventError } from './codec.js';

const log = logger.child({ component: 'parking' });

/**
 * A record a consumer could not use, as it goes to `<prefix>.parked` (the dead-letter topic): the
 * error, who parked it, where it came from and its raw bytes, so it can be tried again once the
 * code is fixed (`retryParked`).
 *
 * A record that is not an event of this log is the same for every consumer, so its id is its place
 * (`<partition>-<offset>`) and whichever consumer meets it first parks it for all. A valid event that
 * one processor cannot apply is that processor's (`<consumer>:<partition>-<offset>`).
 */
export interface ParkedRecord {
  id: string;
  consumer: string;
  /** provider: a PROVIDER winner's issuance the provider refused or did not answer in time (src/issuer) */
  reason: 'foreign' | 'unapplied' | 'provider';
  error: string;
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** base64 of the record's value (null for a record without one) */
  raw: string | null;
  parkedAt: string;
}

const parkedIdOf = (reason: Exclude<ParkedRecord['reason'], 'provider'>, consumer: string, partition: number, offset: bigint | string) =>
  reason === 'foreign' ? `${partition}-${offset}` : `${consumer}:${partition}-${offset}`;

export function parkedRecord(
  consumer: string,
  reason: Exclude<ParkedRecord['reason'], 'provider'>,
  error: string,
  topic: string,
  partition: number,
  message: Pick<KafkaMessage, 'offset' | 'key' | 'value'>,
): ParkedRecord {
  return {
    id: parkedIdOf(reason, consumer, partition, message.offset),
    consumer,
    reason,
    // one short line: an error can quote the record, never the process's environment
    error: error.replace(/\s+/g, ' ').slice(0, 500),
    topic,
    partition,
    offset: message.offset,
    key: message.key ? message.key.toString('utf8') : null,
    raw: message.value ? message.value.toString('base64') : null,
    parkedAt: new Date().toISOString(),
  };
}

/** Sends parked records to the dead-letter topic (acks from all in-sync replicas) and counts them. */
export class Parking {
  /** consumer → records parked by this process, for /metrics */
  readonly counts = new Map<string, number>();
  private readonly logged = new Set<string>();

  private constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly compression: CompressionTypes,
  ) {}

  static async connect(kafka: Kafka, config: Pick<Config, 'topics' | 'KAFKA_COMPRESSION'>): Promise<Parking> {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    return new Parking(producer, config.topics.parked, compressionType(config.KAFKA_COMPRESSION));
  }

  /** Durable before it resolves: a consumer moves past a record only once it is parked. */
  async park(records: readonly ParkedRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      compression: this.compression,
      messages: records.map((r) => ({ key: r.id, value: JSON.stringify(r), headers: { consumer: r.consumer } })),
    });
    for (const r of records) {
      this.counts.set(r.consumer, (this.counts.get(r.consumer) ?? 0) + 1);
      // a consumer that reads the record again (a restart before its offset commit) parks it again, logs it once
      if (this.logged.size > 10_000) this.logged.clear();
      if (!this.logged.has(r.id)) {
        this.logged.add(r.id);
        log.warn({ id: r.id, consumer: r.consumer, partition: r.partition, offset: r.offset, error: r.error }, 'record parked');
      }
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }
}

/** One fetched batch, sorted by what a consumer may do with each record. */
export interface SortedBatch {
  /** events of a version this build knows, up to the first newer one */
  logged: Logged[];
  /** records that are not events of this log, up to the first newer one */
  parked: ParkedRecord[];
  /** the first event of a newer version: the partition stops there */
  stop: NewerEventError | null;
  /** the offset of the last record the consumer may move past, or null when it may move past none */
  last: bigint | null;
}

export function sortBatch(
  consumer: string,
  topic: string,
  partition: number,
  messages: readonly KafkaMessage[],
  opts: { skip?: (m: KafkaMessage) => boolean; lastOffset?: string } = {},
): SortedBatch {
  const sorted: SortedBatch = { logged: [], parked: [], stop: null, last: null };
  for (const m of messages) {
    const offset = BigInt(m.offset);
    if (!opts.skip?.(m)) {
      // a packed record is one unit: all of its events, or it is foreign, or newer (decodeRecord)
      const ds = decodeMessage(m, partition, offset);
      const d = ds[0]!;
      if (d.kind === 'newer') {
        sorted.stop = new NewerEventError(consumer, d);
        break;
      }
      // a genesis record holds no event: every consumer moves past it
      if (d.kind === 'foreign') sorted.parked.push(parkedRecord(consumer, 'foreign', d.error, topic, partition, m));
      else for (const e of ds) if (e.kind === 'event') sorted.logged.push(e.logged);
    }
    sorted.last = offset;
  }
  // KafkaJS's batch.lastOffset() counts the records it filtered out (a transaction's commit marker
  // ends most batches): moving past them too keeps a position from resting short of the log's end
  if (!sorted.stop && opts.lastOffset !== undefined) {
    const end = BigInt(opts.lastOffset);
    if (sorted.last === null || end > sorted.last) sorted.last = end;
  }
  return sorted;
}

/**
 * Partitions a consumer stopped at an event of a newer version. The partition is paused at that
 * record (nothing after it is read, so nothing is misread or reordered); the rest go on. The stop
 * holds until a build that knows the version runs: a restart of this one meets the record again.
 */
export class Stops {
  private readonly stopped = new Map<number, NewerEventError>();

  /** `health`: the consumer's reporter; a stop is failing there (as part `newer:<partition>`) until it ends */
  constructor(
    private readonly consumer: string,
    private readonly health: () => HealthReporter = () => unwatched,
  ) {}

  stop(consumer: Consumer | null, topic: string, err: NewerEventError): void {
    const p = err.record.partition;
    if (!this.stopped.has(p)) log.error({ consumer: this.consumer, partition: p, offset: String(err.record.offset) }, err.message);
    this.stopped.set(p, err);
    this.health().failing(err, `newer:${p}`);
    consumer?.pause([{ topic, partitions: [p] }]);
    consumer?.seek({ topic, partition: p, offset: String(err.record.offset) });
  }

  /** After a rebalance: a partition now owned by another member is that member's to stop at. */
  retain(partitions: readonly number[]): void {
    for (const p of [...this.stopped.keys()]) {
      if (partitions.includes(p)) continue;
      this.stopped.delete(p);
      this.health().ok(`newer:${p}`);
    }
  }

  has(partition: number): boolean {
    return this.stopped.has(partition);
  }

  get size(): number {
    return this.stopped.size;
  }
}
