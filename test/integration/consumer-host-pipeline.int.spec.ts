import { describe, expect, it } from 'vitest';
import type { Consumer } from 'kafkajs';
import type { Handled, ProcessorBatch } from '../../src/read-side/processor.js';
import { campaign, consumerHostRig, Recorder, sorted } from '../support/consumerHostRig.js';
import { elapse, waitUntil } from '../support/wait.js';

/**
 * The consumer host's pipeline against the real broker: the next batch is fetched and decoded
 * while a processor writes the one before, yet batches are handled once and committed in log
 * order, and a commit that fails mid-pipeline leaves nothing behind.
 */
const rig = consumerHostRig('consumer_host_pipe_int');
const { append, theLog, started } = rig;

describe('the consumer host, pipelined', () => {
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
    const groupId = `${rig.iso.config.TOPIC_PREFIX}.read-side.pipelined`;
    const admin = rig.kafka.admin();
    await admin.connect();
    const committedOffset = async (partition: number): Promise<bigint> => {
      const [t] = await admin.fetchOffsets({ groupId, topics: [rig.iso.config.topics.events] });
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
