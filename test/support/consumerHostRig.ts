import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Kafka } from 'kafkajs';
import { EVENT_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import type { HealthReporter } from '../../src/health.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { ConsumerHost } from '../../src/read-side/consumerHost.js';
import { Parking } from '../../src/infra/kafka/parking.js';
import type { Handled, Processor, ProcessorBatch } from '../../src/read-side/processor.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { isolated, type Isolated } from './app.js';

/**
 * What the consumer host's specs share: processors that keep their checkpoints in memory (so what
 * each one was given can be compared with the log exactly), a campaign's events, and a rig of
 * real clients on a topic of the spec's own.
 */
export class Recorder implements Processor {
  readonly got: Logged[] = [];
  readonly stored = new Map<number, bigint>();
  /** batches to refuse before working again */
  failNext = 0;
  readonly failures: string[] = [];
  readonly health: HealthReporter = {
    failing: (err, part) => void this.failures.push(`${String(part)}: ${(err as Error).message}`),
    ok: (part) => void this.recovered.push(String(part)),
  };
  readonly recovered: string[] = [];

  constructor(
    readonly name: string,
    private readonly wants: (e: CampaignEvent) => boolean = () => true,
    readonly rewindable = false,
  ) {}

  canHandle(event: CampaignEvent): boolean {
    return this.wants(event);
  }

  async checkpoints(partitions: readonly number[]): Promise<Map<number, bigint>> {
    return new Map(partitions.map((p) => [p, this.stored.get(p) ?? 0n]));
  }

  async handle(batch: ProcessorBatch): Promise<Handled> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('store away');
    }
    const at = this.stored.get(batch.partition) ?? 0n;
    if (at !== batch.from) return { kind: 'moved', to: at };
    this.got.push(...batch.events);
    this.stored.set(batch.partition, batch.next);
    return { kind: 'handled' };
  }
}

export const key = (l: Logged) => `${l.partition}-${l.offset}`;
const at = new Date().toISOString();
const closesAt = new Date(Date.now() + 3_600_000).toISOString();

export function campaign(id: string, entrants: number): CampaignEvent[] {
  const base = { version: EVENT_VERSION, campaignId: id, occurredAt: at } as const;
  return [
    { ...base, type: 'CampaignCreated', eventId: `created:${id}`, title: id, reward: 'r', stock: 2, opensAt: at, closesAt },
    ...Array.from({ length: entrants }, (_, i): CampaignEvent => ({
      ...base,
      type: 'EntrantRegistered',
      eventId: `entrant:${id}:u${i}`,
      userId: `u${i}`,
    })),
  ];
}

export const sorted = (ls: Logged[]) => [...ls].sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset));

export interface ConsumerHostRig {
  iso: Isolated;
  kafka: Kafka;
  parking: Parking;
  /** the host under test, stopped after each test */
  host: ConsumerHost | null;
  append(events: CampaignEvent[]): Promise<void>;
  /** every record of the topic, in log order */
  theLog(): Promise<Logged[]>;
  /** a host of these processors, started (fetches every 100 ms, checks every 300 ms) */
  started(...processors: Processor[]): Promise<ConsumerHost>;
}

/** The spec's rig, set up before its tests (topics of its own, `name`) and cleaned up after. */
export function consumerHostRig(name: string): ConsumerHostRig {
  const rig: ConsumerHostRig = {
    iso: null as unknown as Isolated,
    kafka: null as unknown as Kafka,
    parking: null as unknown as Parking,
    host: null,
    async append(events) {
      const appender = await EventAppender.connect(rig.kafka, rig.iso.config);
      await Promise.all(events.map((e) => appender.append(e)));
      await appender.close();
    },
    async theLog() {
      const all: Logged[] = [];
      await readLog(rig.kafka, rig.iso.config.topics.events, (batch) => void all.push(...batch));
      return sorted(all);
    },
    async started(...processors) {
      const host = (rig.host = new ConsumerHost(rig.kafka, rig.iso.config, rig.parking, { maxWaitTimeInMs: 100, checkEveryMs: 300 }));
      for (const p of processors) host.add(p);
      await host.start();
      return host;
    },
  };
  beforeAll(async () => {
    rig.iso = await isolated(name);
    rig.kafka = createKafka(rig.iso.config, `${name}-test`);
    const admin = rig.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, rig.iso.config);
    await admin.disconnect();
    rig.parking = await Parking.connect(rig.kafka, rig.iso.config);
  });
  afterEach(async () => {
    await rig.host?.stop();
    rig.host = null;
  });
  afterAll(async () => {
    await rig.parking?.close();
    await rig.iso?.cleanup();
  });
  return rig;
}
