import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { auditCampaign } from '../../src/domain/audit.js';
import { PartitionWriter } from '../../src/writer/partitionWriter.js';
import { created, entrant, rig, type Rig } from '../support/writerPorts.js';

/**
 * A rebuild meeting work already under way, over in-memory ports: the decisions a partition has
 * gathered for its next commit, and the other partitions of the same process.
 */
const gifticons = (r: Rig, p = 0) =>
  r.log
    .events(p)
    .filter((e) => e.type === 'GifticonIssued')
    .map((e) => (e as { userId: string }).userId);

/** Campaign `c` (3 units) with u0 decided and committed, then u1 appended: partition 0's writer. */
async function u0DecidedThenU1(r: Rig): Promise<PartitionWriter> {
  r.log.append(0, created('c', 3));
  r.log.append(0, entrant('c', 'u0'));
  const w = await r.writer();
  await w.onBatch(r.log.batch(0, 0n), r.control());
  await w.whenCommitted();
  r.log.append(0, entrant('c', 'u1'));
  return w;
}

/** A promise the test lets go of, and one that says the code reached it. */
function hold() {
  let reached!: () => void;
  let release!: () => void;
  return {
    reached: new Promise<void>((r) => (reached = r)),
    released: new Promise<void>((r) => (release = r)),
    arrive: () => reached(),
    release: () => release(),
  };
}

describe('a rebuild that begins while decisions wait for their commit', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('drops them: the commit interval passing meanwhile commits nothing, and the replay decides them once', async () => {
    const r = rig();
    r.shared.commitEveryMs = 100;
    const w = await u0DecidedThenU1(r);
    // u1 is placed and told; its decisions wait for the interval
    await w.onBatch(r.log.batch(0, w.committed), r.control());
    expect(r.sink.calls.commit).toBe(1);

    // Redis is flushed. The rebuild stops at its bound (a Postgres read) while the interval
    // passes, and a commit started then would hang until the replay has decided u1.
    const bound = hold();
    r.bound.startOf = async () => {
      bound.arrive();
      await bound.released;
      return 0n;
    };
    const sink = hold();
    r.sink.gate = sink.released;
    r.lines.flush();
    const rebuilding = w.checkBuilt();
    await bound.reached;
    await vi.advanceTimersByTimeAsync(100);
    bound.release();
    await rebuilding;
    expect(w.mode).toMatchObject({ kind: 'rebuilding' });

    // the hung commit goes on once the replay has placed u1 again
    const tell = r.replies.tell.bind(r.replies);
    r.replies.tell = async (replies) => {
      await tell(replies);
      r.sink.gate = null;
      sink.release();
    };
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await vi.advanceTimersByTimeAsync(100);
    expect(await w.whenCommitted()).toBe(true);
    expect(w.mode.kind).toBe('deciding');
    expect(gifticons(r)).toEqual(['u0', 'u1']);
    expect(auditCampaign(r.log.records.get(0)!).problems).toEqual([]);
  });
});

describe('a rebuild of one partition', () => {
  it('leaves what another partition of the process knows alone: a batch deciding meanwhile keeps its campaign’s terms', async () => {
    const r = rig();
    const w0 = await u0DecidedThenU1(r);

    // partition 1 has decisions that Redis no longer holds: it is due for a rebuild
    const w1 = new PartitionWriter(1, r.shared);
    await w1.settle(5n);
    expect(w1.mode.kind).toBe('rebuild-due');

    // while partition 0 places u1, partition 1's rebuild begins
    const place = r.lines.place.bind(r.lines);
    r.lines.place = async (p, work) => {
      const answers = await place(p, work);
      if (p === 0) await w1.beginRebuild();
      return answers;
    };
    await w0.onBatch(r.log.batch(0, w0.committed), r.control());
    expect(w1.mode.kind).toBe('rebuilding');
    expect(await w0.whenCommitted()).toBe(true);
    expect(gifticons(r)).toEqual(['u0', 'u1']);
    expect(auditCampaign(r.log.records.get(0)!).problems).toEqual([]);
  });
});
