import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer, Kafka } from 'kafkajs';
import { EVENT_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import type { HealthReporter } from '../../src/health.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { ConsumerHost } from '../../src/infra/kafka/consumerHost.js';
import { Parking } from '../../src/infra/kafka/parking.js';
import type { Handled, Processor, ProcessorBatch } from '../../src/infra/kafka/processor.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { isolated, type Isolated } from '../support/app.js';
import { elapse, waitUntil } from '../support/wait.js';

/**
 * The consumer host against the real broker: one fetch feeds every processor, a failing processor
 * neither holds the others up nor loses an event, and a checkpoint moved back is re-delivered to
 * its processor alone. The processors here keep their checkpoints in memory, so what each one was
 * given can be compared with the log exactly.
 */
class Recorder implements Processor {
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

const key = (l: Logged) => `${l.partition}-${l.offset}`;
const at = new Date().toISOString();
const closesAt = new Date(Date.now() + 3_600_000).toISOString();

function campaign(id: string, entrants: number): CampaignEvent[] {
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

let iso: Isolated;
let kafka: Kafka;
let parking: Parking;
let host: ConsumerHost | null = null;

beforeAll(async () => {
  iso = await isolated('consumer_host_int');
  kafka = createKafka(iso.config, 'consumer-host-test');
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, iso.config);
  await admin.disconnect();
  parking = await Parking.connect(kafka, iso.config);
});

afterEach(async () => {
  await host?.stop();
  host = null;
});

afterAll(async () => {
  await parking?.close();
  await iso?.cleanup();
});

async function append(events: CampaignEvent[]): Promise<void> {
  const appender = await EventAppender.connect(kafka, iso.config);
  await Promise.all(events.map((e) => appender.append(e)));
  await appender.close();
}

async function theLog(): Promise<Logged[]> {
  const all: Logged[] = [];
  await readLog(kafka, iso.config.topics.events, (batch) => void all.push(...batch));
  return all.sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset));
}

const sorted = (ls: Logged[]) => [...ls].sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset));

async function started(...processors: Processor[]): Promise<ConsumerHost> {
  host = new ConsumerHost(kafka, iso.config, parking, { maxWaitTimeInMs: 100, checkEveryMs: 300 });
  for (const p of processors) host.add(p);
  await host.start();
  return host;
}

describe('the consumer host', () => {
  it('feeds every processor from one consumer group, each the events it can handle, once and in log order', async () => {
    await append([...campaign('one-a', 30), ...campaign('one-b', 30)]);
    const log = await theLog();
    const all = new Recorder('all');
    const created = new Recorder('created', (e) => e.type === 'CampaignCreated');
    const h = await started(all, created);

    await waitUntil(
      async () => all.got.length,
      (n) => n >= log.length,
      { what: 'every event handled' },
    );
    await waitUntil(
      async () => created.got.length,
      (n) => n >= 2,
      { what: 'both campaigns created' },
    );
    expect(sorted(all.got)).toEqual(log);
    expect(new Set(all.got.map(key)).size).toBe(all.got.length);
    expect(sorted(created.got)).toEqual(log.filter((l) => l.event.type === 'CampaignCreated'));

    const admin = kafka.admin();
    await admin.connect();
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(iso.config.TOPIC_PREFIX) && !g.includes('.reader.'));
    await admin.disconnect();
    expect(groups).toEqual([h.groupId]);
    expect(h.groupId).toBe(`${iso.config.TOPIC_PREFIX}.read-side.all+created`);
  });

  it("a checkpoint beyond its partition's end (the log was replaced) stops the partition out loud, skipping nothing, until adopted", async () => {
    const before = await theLog();
    const ahead = new Recorder('ahead');
    for (const p of [0, 1]) ahead.stored.set(p, 1_000_000n);
    await started(ahead);
    await waitUntil(
      async () => ahead.failures.filter((f) => f.startsWith('log:')),
      (fs) => fs.length >= 2,
      { what: 'both partitions reported' },
    );
    expect(ahead.failures.find((f) => f.startsWith('log:0'))).toMatch(
      /^log:0: run `npm run adopt-log`: the ahead checkpoint of partition 0 is at offset 1000000, beyond the log's end \(\d+\)/,
    );
    // records appended meanwhile are neither handled nor skipped
    await append(campaign('beyond', 5));
    const log = await theLog();
    expect(log.length).toBeGreaterThan(before.length);
    expect(ahead.got).toEqual([]);
    // adopt-log empties the checkpoints: the next check reads the partitions from their start
    ahead.stored.clear();
    await waitUntil(
      async () => ahead.got.length,
      (n) => n >= log.length,
      { what: 'the whole log handled once adopted' },
    );
    expect(sorted(ahead.got)).toEqual(log);
    expect(ahead.recovered).toEqual(expect.arrayContaining(['log:0', 'log:1']));
  });

  it('a failing processor is reported and tried again after a backoff while the others go on, and then misses nothing', async () => {
    const log = await theLog();
    const healthy = new Recorder('healthy');
    const failing = new Recorder('failing');
    // both start where the previous test ended, so only the new events flow
    for (const p of new Set(log.map((l) => l.partition))) {
      const end = log.filter((l) => l.partition === p).at(-1)!.offset + 1n;
      healthy.stored.set(p, end);
      failing.stored.set(p, end);
    }
    failing.failNext = Number.POSITIVE_INFINITY;
    await started(healthy, failing);
    await append(campaign('two', 40));
    const fresh = (await theLog()).filter((l) => l.event.campaignId === 'two');

    await waitUntil(
      async () => healthy.got.length,
      (n) => n >= fresh.length,
      { what: 'the healthy processor handles every new event' },
    );
    // the healthy one finished while the other still fails
    expect(failing.got).toEqual([]);
    expect(failing.failures[0]).toMatch(/store away/);
    failing.failNext = 0;
    await waitUntil(
      async () => failing.got.length,
      (n) => n >= fresh.length,
      { what: 'the failing processor catches up', timeoutMs: 30_000 },
    );
    expect(sorted(failing.got)).toEqual(fresh);
    expect(sorted(healthy.got)).toEqual(fresh);
    // it is ok again on the partition it failed on
    const part = failing.failures[0]!.split(':')[0]!;
    expect(failing.recovered).toContain(part);
  });

  it('a checkpoint moved back (a replay) is noticed on an idle partition and re-delivered to its processor alone', async () => {
    const log = await theLog();
    const rewound = new Recorder('rewound', () => true, true);
    const other = new Recorder('other');
    await started(rewound, other);
    await waitUntil(
      async () => Math.min(rewound.got.length, other.got.length),
      (n) => n >= log.length,
      { what: 'both caught up' },
    );

    const p = log.find((l) => l.event.campaignId === 'two')!.partition;
    rewound.got.length = 0;
    rewound.stored.set(p, 0n);
    const again = log.filter((l) => l.partition === p);
    await waitUntil(
      async () => rewound.got.length,
      (n) => n >= again.length,
      { what: 'the rewound partition re-delivered' },
    );
    expect(sorted(rewound.got)).toEqual(again);
    // the other processor was given nothing twice
    expect(sorted(other.got)).toEqual(log);
  });

  it('a rewind its processor hears of is acted on at once, not at the next check', async () => {
    const log = await theLog();
    let heard: (() => void) | null = null;
    const rewound = Object.assign(new Recorder('heard', () => true, true), {
      watchRewinds: async (h: () => void) => {
        heard = h;
        return async () => void (heard = null);
      },
    });
    // the checks alone would notice the rewind a minute later
    host = new ConsumerHost(kafka, iso.config, parking, { maxWaitTimeInMs: 100, checkEveryMs: 60_000 });
    host.add(rewound);
    await host.start();
    await waitUntil(
      async () => rewound.got.length,
      (n) => n >= log.length,
      { what: 'caught up' },
    );
    expect(heard).not.toBeNull();

    const p = log.find((l) => l.event.campaignId === 'two')!.partition;
    rewound.got.length = 0;
    rewound.stored.set(p, 0n);
    heard!();
    const again = log.filter((l) => l.partition === p);
    await waitUntil(
      async () => rewound.got.length,
      (n) => n >= again.length,
      { what: 'the rewound partition re-delivered', timeoutMs: 10_000 },
    );
    expect(sorted(rewound.got)).toEqual(again);
    await host.stop();
    host = null;
    expect(heard).toBeNull();
  });

  it('fetches on while a processor that signals writing writes, and not while it opens its transaction', async () => {
    const before = await theLog();
    const times = { opened: 0, writing: 0 };
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const slow = Object.assign(
      new (class extends Recorder {
        override async handle(batch: ProcessorBatch): Promise<Handled> {
          if (batch.events.length > 0 && times.opened === 0) {
            times.opened = Date.now();
            // opening and reading: the host waits (its fetches come every ~100 ms when it does not)
            await elapse(500, 'a processor slow to open its transaction');
            times.writing = Date.now();
            batch.writing?.();
            await released;
          }
          return super.handle(batch);
        }
      })('signals'),
      { signalsWriting: true },
    );
    for (const p of new Set(before.map((l) => l.partition)))
      slow.stored.set(p, before.filter((l) => l.partition === p).at(-1)!.offset + 1n);
    const h = await started(slow);
    const consumer = (h as unknown as { consumer: Consumer }).consumer;
    const fetches: number[] = [];
    consumer.on(consumer.events.FETCH_START, () => void fetches.push(Date.now()));
    await append(campaign('six', 3));
    try {
      await waitUntil(
        async () => times.writing,
        (t) => t > 0,
        { what: 'the processor writing' },
      );
      await waitUntil(
        async () => fetches.filter((t) => t >= times.writing).length,
        (n) => n >= 2,
        { what: 'fetches while it writes' },
      );
      expect(fetches.filter((t) => t > times.opened && t < times.writing)).toEqual([]);
    } finally {
      release();
    }
    const six = (await theLog()).filter((l) => l.event.campaignId === 'six');
    await waitUntil(
      async () => slow.got.filter((l) => l.event.campaignId === 'six').length,
      (n) => n === six.length,
      { what: 'applied' },
    );
  });

  it('a first batch fetched while the join still reads the checkpoints is handled once, and the partition goes on after it', async () => {
    await append(campaign('three', 40));
    const before = await theLog();
    // slow to answer at the join (a busy Postgres): the first fetch comes back before the lane opens
    const slow = new (class extends Recorder {
      override async checkpoints(partitions: readonly number[]): Promise<Map<number, bigint>> {
        await elapse(1500, 'a Postgres slow to answer at the join');
        return super.checkpoints(partitions);
      }
    })('slow');
    await started(slow);
    await waitUntil(
      async () => slow.got.length,
      (n) => n >= before.length,
      { what: 'the log so far handled', timeoutMs: 30_000 },
    );
    await append(campaign('four', 40));
    const log = await theLog();
    await waitUntil(
      async () => slow.got.length,
      (n) => n >= log.length,
      { what: 'the events appended after the first batch handled', timeoutMs: 30_000 },
    );
    expect(sorted(slow.got)).toEqual(log);
  });

  it('fetches the next batch while one is being committed, yet commits in log order, and a commit that fails mid-pipeline leaves nothing behind and is applied again once', async () => {
    const before = await theLog();
    const groupId = `${iso.config.TOPIC_PREFIX}.read-side.pipelined`;
    const admin = kafka.admin();
    await admin.connect();
    const committedOffset = async (partition: number): Promise<bigint> => {
      const [t] = await admin.fetchOffsets({ groupId, topics: [iso.config.topics.events] });
      const o = t?.partitions.find((x) => x.partition === partition)?.offset ?? '-1';
      return BigInt(o);
    };
    // a store whose commit takes a while, and whose second commit fails (after the wait: mid-pipeline)
    const calls: { from: bigint; stored: bigint; kafka: bigint }[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    let commits = 0;
    const store = new (class extends Recorder {
      override async handle(batch: ProcessorBatch): Promise<Handled> {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        try {
          calls.push({ from: batch.from, stored: this.stored.get(batch.partition) ?? 0n, kafka: await committedOffset(batch.partition) });
          await elapse(300, 'a store whose commit takes a while');
          if (batch.events.length > 0 && ++commits === 2) throw new Error('commit failed');
          return await super.handle(batch);
        } finally {
          inFlight--;
        }
      }
    })('pipelined');
    for (const p of new Set(before.map((l) => l.partition)))
      store.stored.set(p, before.filter((l) => l.partition === p).at(-1)!.offset + 1n);
    await started(store);
    // three waves, so that batches arrive while the previous one is in flight
    const wave = (w: string) =>
      campaign('five', 30)
        .slice(1)
        .map((e) => ({ ...e, eventId: `${e.eventId}:${w}` }));
    for (const events of [[...campaign('five', 0), ...wave('a')], wave('b'), wave('c')]) {
      await append(events);
      await elapse(150, 'waves apart, so that each arrives while the one before is in flight');
    }
    const fresh = (await theLog()).filter((l) => l.event.campaignId === 'five');
    const p = fresh[0]!.partition;
    await waitUntil(
      async () => store.stored.get(p) ?? 0n,
      (at) => at > fresh.at(-1)!.offset,
      { what: 'every wave applied', timeoutMs: 30_000 },
    );

    // every event applied once, in log order, the failed batch included
    expect(store.got.filter((l) => l.event.campaignId === 'five')).toEqual(fresh);
    expect(store.failures[0]).toMatch(/commit failed/);
    // one batch of the partition at a time, and never one that starts past the committed checkpoint
    expect(mostInFlight).toBe(1);
    for (const c of calls) expect(c.from).toBeLessThanOrEqual(c.stored);
    // Kafka's committed offset never passed a batch still being committed
    for (const c of calls) expect(c.kafka).toBeLessThanOrEqual(c.stored);
    await waitUntil(
      async () => committedOffset(p),
      (o) => o === store.stored.get(p),
      { what: 'the group offset reaches the checkpoint' },
    );
    await admin.disconnect();
  });
});
