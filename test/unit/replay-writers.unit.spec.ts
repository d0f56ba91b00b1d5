import { describe, expect, it } from 'vitest';
import { noWriterLine, NoWriter, reachLine, unowned, WriterWatch, type Ownership, type WriterRole } from '../../batch/writers.js';

const writer: WriterRole = { role: 'writer', group: 'fc.decider', topic: 'fc.campaign-events' };
const own = (state: string, owners: [number, string][]): Ownership => ({
  state,
  members: new Set(owners.map(([, m]) => m)).size,
  owners: new Map(owners),
});
const projector: WriterRole = { role: 'projector', group: 'fc.projector', topic: 'fc.campaign-events' };
const empty: Ownership = { state: 'Empty', members: 0, owners: new Map() };

describe('writers: who owns the partitions a replay rewinds', () => {
  it('a partition no member owns is missing; owned ones are not', () => {
    expect(
      unowned(
        own('Stable', [
          [0, 'm1'],
          [2, 'm1'],
        ]),
        [0, 1, 2, 3],
      ),
    ).toEqual([1, 3]);
    expect(unowned(empty, [3])).toEqual([3]);
  });

  it('a group rebalancing with members in it is a writer joining: nothing counts as missing yet', () => {
    expect(unowned({ state: 'PreparingRebalance', members: 1, owners: new Map() }, [0, 1])).toEqual([]);
    expect(unowned({ state: 'CompletingRebalance', members: 2, owners: new Map() }, [0])).toEqual([]);
  });

  it('the line names the partitions, the group and the command that starts a writer', () => {
    expect(noWriterLine([{ writer: writer, partitions: [3], ownership: empty }], { then: 'then run this replay again' })).toBe(
      'no writer owns partition 3 of fc.campaign-events (consumer group fc.decider has no member): start one with `npm start -- --roles writer`, then run this replay again',
    );
    expect(
      noWriterLine([{ writer: projector, partitions: [0, 1], ownership: own('Stable', [[2, 'm']]) }], {
        doing: 'the rebuild stopped',
        then: 'it catches up',
      }),
    ).toBe(
      'the rebuild stopped: no projector owns partitions 0, 1 of fc.campaign-events (consumer group fc.projector has 1 member(s), none owning them): start one with `npm start -- --roles projector`, it catches up',
    );
  });

  it('both writers of ALL missing make one line with one command that starts both', () => {
    const both = NoWriter.of(
      [
        new NoWriter([{ writer: writer, partitions: [1], ownership: empty }], { then: 'x' }),
        new NoWriter([{ writer: projector, partitions: [1], ownership: empty }], { then: 'x' }),
      ],
      { then: 'then run this replay again' },
    );
    expect(both.message).toBe(
      'no projector owns partition 1 of fc.campaign-events (consumer group fc.projector has no member); no writer owns partition 1 of fc.campaign-events (consumer group fc.decider has no member): ' +
        'start them with `npm start -- --roles projector,writer`, then run this replay again',
    );
  });

  it('says how far the writer got, furthest behind first', () => {
    expect(reachLine(writer, [{ partition: 3, at: 12_000n, until: 41_200n }])).toBe(
      'waiting for the writer of partition 3 to reach offset 41,200 (at 12,000)',
    );
    expect(
      reachLine(writer, [
        { partition: 0, at: 90n, until: 100n },
        { partition: 1, at: null, until: 500n },
        { partition: 2, at: 7n, until: 7n },
      ]),
    ).toBe('waiting for the writer of partition 1 to reach offset 500 (not started), partition 0 to reach offset 100 (at 90)');
  });
});

describe('writers: a watch over a wait', () => {
  function watched(answers: Ownership[], graceMs = 10_000) {
    let now = 0;
    let calls = 0;
    const watch = new WriterWatch(writer, async () => answers[Math.min(calls++, answers.length - 1)]!, graceMs, {
      everyMs: 1000,
      now: () => now,
    });
    return { watch, at: (t: number) => (now = t), calls: () => calls };
  }
  const line = { then: 'then run this replay again' };

  it('waits while no writer owns the partition, then fails for good with the line once the grace is over', async () => {
    const w = watched([empty]);
    const first = await w.watch.check([1], line);
    expect(first.missing).toEqual([1]);
    expect(first.waiting).toContain('waiting for a writer to own partition 1');
    expect(first.waiting).toContain('gives up in 10 s');
    w.at(9_999);
    expect((await w.watch.check([1], line)).waiting).toContain('gives up in 1 s');
    w.at(10_000);
    const err = await w.watch.check([1], line).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWriter);
    expect((err as Error).message).toBe(noWriterLine([{ writer: writer, partitions: [1], ownership: empty }], line));
  });

  it('a writer that comes up within the grace ends the wait; one that leaves later starts the grace anew', async () => {
    const w = watched([empty, own('Stable', [[1, 'm1']]), empty]);
    await w.watch.check([1], line);
    w.at(8_000);
    expect(await w.watch.check([1], line)).toMatchObject({ missing: [], waiting: null });
    w.at(20_000);
    expect((await w.watch.check([1], line)).waiting).toContain('gives up in 10 s');
    w.at(29_000);
    await expect(w.watch.check([1], line)).resolves.toMatchObject({ missing: [1] });
    w.at(30_000);
    await expect(w.watch.check([1], line)).rejects.toBeInstanceOf(NoWriter);
  });

  it('asks the group at most once a second', async () => {
    const w = watched([empty]);
    await w.watch.check([1], line);
    w.at(500);
    await w.watch.check([1], line);
    expect(w.calls()).toBe(1);
    w.at(1000);
    await w.watch.check([1], line);
    expect(w.calls()).toBe(2);
  });
});
