import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { auditCampaign } from '../../src/domain/audit.js';
import { closed, created, entrant, rig, type Rig } from '../support/writerPorts.js';
import type { memoryCodes } from '../support/codes.js';

/**
 * The single writer's crash logic, given / when / then, over in-memory ports: no broker, no Redis.
 * Campaign `c` has 3 units; u0..u4 enter in that order (offsets 1..5).
 */
function given(r: Rig, users = 5) {
  r.log.append(0, created('c', 3));
  for (let i = 0; i < users; i++) r.log.append(0, entrant('c', `u${i}`));
}

const kinds = (r: Rig) => r.log.events(0).map((e) => e.type);
const gifticons = (r: Rig) =>
  r.log
    .events(0)
    .filter((e) => e.type === 'GifticonIssued')
    .map((e) => (e as { userId: string }).userId);

describe('a partition writer', () => {
  it('decides a batch: the first 3 distinct users win, one gifticon each, committed with the input offsets', async () => {
    const r = rig();
    given(r);
    const w = await r.writer();
    const ctl = r.control();
    await w.onBatch(r.log.batch(0, 0n), ctl);
    expect(await w.whenCommitted()).toBe(true);
    expect(gifticons(r)).toEqual(['u0', 'u1', 'u2']);
    expect(kinds(r).filter((k) => k === 'CampaignSoldOut')).toHaveLength(1);
    expect(r.log.committed.get(0)).toBe(6n);
    expect(ctl.resolved).toEqual([5n]);
    expect(r.replies.told.map((t) => (t.kind === 'placed' ? t.position : null))).toEqual([1, 2, 3, 4, 5]);
    expect(auditCampaign(r.log.records.get(0)!).problems).toEqual([]);
  });

  it('after a close, a user already in line who enters again keeps their place (as the domain decides); a newcomer is turned away', async () => {
    const r = rig();
    given(r, 2);
    r.log.append(0, closed('c'));
    r.log.append(0, entrant('c', 'u1', 1));
    r.log.append(0, entrant('c', 'u9'));
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    const told = r.replies.told.map((t) => `${t.userId}:${t.kind === 'placed' ? t.position : t.rejection}`);
    expect(told).toEqual(['u0:1', 'u1:2', 'u1:2', 'u9:CLOSED']);
    expect(gifticons(r)).toEqual(['u0', 'u1']);
  });

  it('a commit that lands and then throws is settled, not decided again: no second gifticon', async () => {
    const r = rig();
    given(r);
    const w = await r.writer();
    r.sink.fault = 'landed-then-throw';
    await w.onBatch(r.log.batch(0, 0n), r.control());
    expect(await w.whenCommitted()).toBe(false);
    // settled: the consumer goes to where the committed decisions end, past the batch
    expect(r.sink.calls.settle).toBe(2);
    expect(r.seeks).toEqual([{ partition: 0, offset: 6n }]);
    expect(w.committed).toBe(6n);
    // the consumer, sent there, reads the decisions back: they are re-applied, nothing is decided again
    await w.onBatch(r.log.batch(0, 6n), r.control());
    await w.whenCommitted();
    expect(gifticons(r)).toEqual(['u0', 'u1', 'u2']);
    expect(auditCampaign(r.log.records.get(0)!).problems).toEqual([]);
  });

  it('a commit that throws with its transaction open is decided again from the committed offset, in the same places', async () => {
    const r = rig();
    given(r);
    const w = await r.writer();
    r.sink.fault = 'throw-open';
    await w.onBatch(r.log.batch(0, 0n), r.control());
    expect(await w.whenCommitted()).toBe(false);
    expect(r.log.end(0)).toBe(6n);
    expect(r.seeks).toEqual([{ partition: 0, offset: 0n }]);
    const placesBefore = r.replies.told.map((t) => (t.kind === 'placed' ? t.ticket : null));
    await w.onBatch(r.log.batch(0, 0n), r.control());
    expect(await w.whenCommitted()).toBe(true);
    expect(gifticons(r)).toEqual(['u0', 'u1', 'u2']);
    expect(r.replies.told.slice(5).map((t) => (t.kind === 'placed' ? t.ticket : null))).toEqual(placesBefore);
  });

  it('a batch that comes while an older commit fails is dropped, not committed behind it', async () => {
    const r = rig();
    given(r, 3);
    const w = await r.writer();
    let release!: () => void;
    r.sink.gate = new Promise((res) => (release = res));
    r.sink.fault = 'throw-open';
    await w.onBatch(r.log.batch(0, 0n, 2), r.control()); // created + u0: u0 wins, the commit hangs
    const second = r.control();
    const behind = w.onBatch(r.log.batch(0, 2n), second); // u1, u2 wait for it
    r.sink.gate = null;
    release();
    await behind;
    expect(second.resolved).toEqual([]);
    expect(r.log.committed.has(0)).toBe(false);
    expect(gifticons(r)).toEqual([]);
  });

  it('Redis flushed between batches: the next batch rebuilds from offset 0, then decides in the log’s places', async () => {
    const r = rig();
    given(r, 2);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    const upTo = r.log.end(0); // past the decisions read back
    r.log.append(0, entrant('c', 'u2'));
    r.log.append(0, entrant('c', 'u3'));
    r.lines.flush();
    // the entry names a campaign Redis no longer knows: a rebuild up to where decisions end
    await w.onBatch(r.log.batch(0, upTo), r.control());
    // (the read-backs of its own decisions committed nothing: decisions end at the input's end)
    expect(w.mode).toMatchObject({ kind: 'rebuilding', until: 3n, seeking: true });
    expect(r.seeks.at(-1)).toEqual({ partition: 0, offset: 0n });
    expect(r.shared.stats.rebuilds).toBe(1);
    // a batch fetched before the seek (it starts past `until`) neither decides nor finishes the rebuild
    await w.onBatch(r.log.batch(0, upTo), r.control());
    expect(w.mode).toMatchObject({ kind: 'rebuilding', seeking: true });
    expect(gifticons(r)).toEqual(['u0', 'u1']);
    // the replay from 0: everything below `until` is re-applied, u2 is decided anew as the 3rd
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    expect(w.mode.kind).toBe('deciding');
    expect(await r.lines.isBuilt(0)).toBe(true);
    expect(gifticons(r)).toEqual(['u0', 'u1', 'u2']);
    expect([...r.lines.lines.get('c')!.keys()]).toEqual(['u0', 'u1', 'u2', 'u3']);
    expect(auditCampaign(r.log.records.get(0)!).problems).toEqual([]);
  });

  it('a campaign lost from Redis while the rebuild ran (flushed again, or wiped by a replay) makes it start over instead of finishing', async () => {
    const r = rig();
    given(r, 1);
    r.log.append(0, created('d', 1));
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    r.lines.flush();
    await w.checkBuilt();
    // the replay re-creates both campaigns, batch by batch; Redis loses 'c' before the last batch
    await w.onBatch(r.log.batch(0, 0n, 2), r.control());
    r.lines.metas.delete('c');
    await w.onBatch(r.log.batch(0, 2n), r.control());
    expect(await r.lines.isBuilt(0)).toBe(false);
    expect(w.mode).toMatchObject({ kind: 'rebuilding', seeking: true });
    expect(r.shared.stats.rebuilds).toBe(2);
    expect(r.seeks.at(-1)).toEqual({ partition: 0, offset: 0n });
    // the second replay finds everything again and finishes
    await w.onBatch(r.log.batch(0, 0n), r.control());
    expect(w.mode.kind).toBe('deciding');
    expect(await r.lines.isBuilt(0)).toBe(true);
    expect(r.lines.metas.get('c')).toMatchObject({ building: false });
  });

  it('a flush noticed by the idle check starts the same rebuild, once', async () => {
    const r = rig();
    given(r, 1);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    r.lines.flush();
    await Promise.all([w.checkBuilt(), w.checkBuilt()]);
    expect(w.mode).toMatchObject({ kind: 'rebuilding' });
    expect(r.shared.stats.rebuilds).toBe(1);
    expect(r.seeks).toEqual([{ partition: 0, offset: 0n }]);
  });

  it('a replay job wiping the partition holds the rebuild back until the wipe ends: the partition is rebuilt once', async () => {
    const r = rig();
    given(r, 1);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    // the job took the sentinel and is wiping campaign by campaign
    r.lines.wiping.add(0);
    r.lines.flush();
    await w.checkBuilt();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.checkBuilt();
    expect(w.mode).toMatchObject({ kind: 'rebuild-due' });
    expect(r.shared.stats.rebuilds).toBe(0);
    expect(r.seeks).toEqual([]);
    // the wipe ends
    r.lines.wiping.delete(0);
    await w.checkBuilt();
    expect(w.mode).toMatchObject({ kind: 'rebuilding' });
    expect(r.shared.stats.rebuilds).toBe(1);
    expect(r.seeks).toEqual([{ partition: 0, offset: 0n }]);
  });

  it('an assignment taken away mid-commit: a failed commit is left to the new owner, neither settled nor sought', async () => {
    const r = rig();
    given(r, 1);
    const w = await r.writer();
    let release!: () => void;
    r.sink.gate = new Promise((res) => (release = res));
    r.sink.fault = 'throw-open';
    await w.onBatch(r.log.batch(0, 0n), r.control());
    const retired = w.retire();
    release();
    await retired;
    expect(r.sink.calls.settle).toBe(1); // the assignment's own
    expect(r.seeks).toEqual([]);
    // and a batch that reaches it afterwards reads nothing
    const ctl = r.control();
    await w.onBatch(r.log.batch(0, 0n), ctl);
    expect(ctl.resolved).toEqual([]);
  });

  it('a stale batch (the group moved on) commits nothing', async () => {
    const r = rig();
    given(r);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control({ stale: () => true }));
    await w.whenCommitted();
    expect(r.sink.calls.commit).toBe(0);
  });

  it('a batch that decided nothing opens no transaction; its offsets commit alone once the partition is idle', async () => {
    const r = rig();
    given(r);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    const commits = r.sink.calls.commit;
    const from = r.log.end(0);
    r.log.append(0, entrant('c', 'u9'));
    await w.onBatch(r.log.batch(0, from), r.control()); // a loser
    expect(r.sink.calls.commit).toBe(commits);
    expect(w.mode).toMatchObject({ kind: 'deciding', idleTail: from + 1n });
    w.commitIdleTail();
    await w.whenCommitted();
    expect(r.sink.calls.commit).toBe(commits + 1);
    expect(r.log.committed.get(0)).toBe(from + 1n);
  });

  it('settles to RebuildDue when Redis does not hold a partition that has decisions', async () => {
    const r = rig();
    given(r);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    r.lines.flush();
    const next = await r.writer();
    expect(next.mode.kind).toBe('rebuild-due');
    expect(next.committed).toBe(r.log.committed.get(0));
  });

  describe('a bounded rebuild', () => {
    /** 'old' (stock 2) takes 1,200 entrants and closes; then 'c' (stock 3) opens and takes 1,100 (u0..u1099) */
    async function history(r: Rig) {
      r.log.append(0, created('old', 2));
      for (let i = 0; i < 1200; i++) r.log.append(0, entrant('old', `o${i}`));
      const w = await r.writer();
      await w.onBatch(r.log.batch(0, 0n, 5000), r.control());
      await w.whenCommitted();
      r.log.append(0, closed('old'));
      const start = r.log.append(0, created('c', 3)).offset;
      for (let i = 0; i < 1100; i++) r.log.append(0, entrant('c', `u${i}`));
      await w.onBatch(r.log.batch(0, start - 1n, 5000), r.control());
      await w.whenCommitted();
      return { w, start };
    }

    it('replays from the bound: the closed campaign below it is not brought back, the open one is, and decides on in the log’s places', async () => {
      const r = rig();
      const { w, start } = await history(r);
      expect(await r.lines.terms(['old'])).toHaveProperty('size', 1);
      const until = w.committed;
      r.lines.flush();
      r.bound.start = start;
      await w.checkBuilt();
      expect(r.bound.asked).toEqual([{ partition: 0, until }]);
      expect(w.mode).toMatchObject({ kind: 'rebuilding', from: start, until });
      expect(r.seeks.at(-1)).toEqual({ partition: 0, offset: start });

      r.log.append(0, entrant('c', 'u1100'));
      r.log.append(0, entrant('c', 'u5'));
      const told = r.replies.told.length;
      await w.onBatch(r.log.batch(0, start, 5000), r.control());
      await w.whenCommitted();
      expect(w.mode.kind).toBe('deciding');
      expect(await r.lines.isBuilt(0)).toBe(true);
      // the closed campaign's keys stay gone: its winners' read-backs were skipped, not applied to a campaign Redis no longer has
      expect([...r.lines.metas.keys()]).toEqual(['c']);
      expect(r.lines.won.has('old')).toBe(false);
      expect(r.lines.lines.get('c')!.size).toBe(1101);
      // decided anew after the replay: the newcomer is 1,101st, the second click of u5 keeps 6th
      expect(r.replies.told.slice(told).map((t) => `${t.userId}:${t.kind === 'placed' ? t.position : t.rejection}`)).toEqual([
        'u1100:1101',
        'u5:6',
      ]);
      expect(gifticons(r).filter((u) => u.startsWith('u'))).toEqual(['u0', 'u1', 'u2']);
      expect(auditCampaign(r.log.records.get(0)!.filter((l) => l.event.campaignId === 'c')).problems).toEqual([]);
    });

    it('replays the whole partition when no batch comes from the bound (the offsets below `until` held only transaction markers)', async () => {
      const r = rig();
      const { w } = await history(r);
      const until = w.committed;
      r.lines.flush();
      r.bound.start = until; // nothing live below: the read model says so
      await w.checkBuilt();
      expect(r.seeks.at(-1)).toEqual({ partition: 0, offset: until - 1n });
      // what comes starts at `until`: as a batch fetched before the seek would, so it is not the replay
      await w.onBatch(r.log.batch(0, until), r.control());
      expect(w.mode).toMatchObject({ kind: 'rebuilding', seeking: true });
      await w.checkBuilt();
      expect(r.shared.stats.rebuilds).toBe(1);
      if (w.mode.kind === 'rebuilding') w.mode.seekAt -= 10_000;
      await w.checkBuilt();
      expect(r.shared.stats.rebuilds).toBe(2);
      expect(r.seeks.at(-1)).toEqual({ partition: 0, offset: 0n });
      await w.onBatch(r.log.batch(0, 0n, 5000), r.control());
      expect(w.mode.kind).toBe('deciding');
      expect(await r.lines.isBuilt(0)).toBe(true);
    });

    it('replays the whole partition when the bound cannot be read', async () => {
      const r = rig();
      const { w } = await history(r);
      r.lines.flush();
      r.bound.startOf = async () => {
        throw new Error('injected: Postgres is down');
      };
      await w.checkBuilt();
      expect(r.seeks.at(-1)).toEqual({ partition: 0, offset: 0n });
      await w.onBatch(r.log.batch(0, 0n, 5000), r.control());
      expect(w.mode.kind).toBe('deciding');
      expect([...r.lines.metas.keys()].sort()).toEqual(['c', 'old']);
    });
  });
});

describe('a partition writer with a commit interval', () => {
  // the interval's clock is faked: a gathered commit runs when the test moves time past it
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());
  const placed = (r: Rig) => r.replies.told.map((t) => `${t.userId}:${t.kind === 'placed' ? t.position : t.rejection}`);

  it('tells the batches between two commits at once, and commits their decisions together with the offsets', async () => {
    const r = rig();
    r.shared.commitEveryMs = 60;
    given(r);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n, 2), r.control()); // created + u0: the first commit starts at once
    expect(await w.whenCommitted()).toBe(true);
    expect(r.sink.calls.commit).toBe(1);
    await w.onBatch(r.log.batch(0, 2n, 2), r.control()); // u1, u2: told now, their commit waits
    const end = r.log.end(0);
    await w.onBatch(r.log.batch(0, 4n), r.control()); // u3, u4 lose (and u0's decisions read back): their offsets ride along
    expect(placed(r)).toEqual(['u0:1', 'u1:2', 'u2:3', 'u3:4', 'u4:5']);
    expect(r.sink.calls.commit).toBe(1);
    expect(gifticons(r)).toEqual(['u0']);
    await vi.advanceTimersByTimeAsync(100);
    expect(await w.whenCommitted()).toBe(true);
    expect(r.sink.calls.commit).toBe(2);
    expect(r.log.committed.get(0)).toBe(end);
    expect(gifticons(r)).toEqual(['u0', 'u1', 'u2']);
    expect(auditCampaign(r.log.records.get(0)!).problems).toEqual([]);
  });

  it('a gathered commit that fails sends the consumer back: the same entries are decided again in the same places, one gifticon each', async () => {
    const r = rig();
    r.shared.commitEveryMs = 60;
    given(r, 3);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n, 2), r.control());
    await w.whenCommitted();
    await w.onBatch(r.log.batch(0, 2n), r.control()); // u1, u2 gathered
    r.sink.fault = 'throw-open';
    await vi.advanceTimersByTimeAsync(100);
    expect(r.sink.calls.commit).toBe(2);
    expect(r.seeks).toEqual([{ partition: 0, offset: 2n }]);
    expect(gifticons(r)).toEqual(['u0']);
    await w.onBatch(r.log.batch(0, 2n), r.control());
    await vi.advanceTimersByTimeAsync(100);
    expect(await w.whenCommitted()).toBe(true);
    expect(placed(r)).toEqual(['u0:1', 'u1:2', 'u2:3', 'u1:2', 'u2:3']);
    expect(gifticons(r)).toEqual(['u0', 'u1', 'u2']);
    expect(auditCampaign(r.log.records.get(0)!).problems).toEqual([]);
  });

  it('a partition taken away commits what it already told before it lets go', async () => {
    const r = rig();
    r.shared.commitEveryMs = 10_000;
    given(r, 2);
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n, 2), r.control());
    await w.whenCommitted();
    const end = r.log.end(0);
    await w.onBatch(r.log.batch(0, 2n), r.control()); // u1 gathered, its commit 10 s away
    await w.retire();
    expect(r.log.committed.get(0)).toBe(end);
    expect(gifticons(r)).toEqual(['u0', 'u1']);
  });

  it('a campaign whose data key cannot be had: the batch fails with why, nothing is told or issued; once it can, the same winners get sealed codes', async () => {
    const r = rig();
    given(r);
    const codes = r.shared.codes as ReturnType<typeof memoryCodes>;
    codes.fail.add('c');
    const w = await r.writer();
    const ctl = r.control();
    await expect(w.onBatch(r.log.batch(0, 0n), ctl)).rejects.toThrow(/data key of campaign c cannot be had/);
    expect(kinds(r).filter((k) => k === 'GifticonIssued' || k === 'WinnerSelected')).toEqual([]);
    expect(r.replies.told).toEqual([]);
    expect(ctl.resolved).toEqual([]);
    // the consumer retries the batch: with the key back, it decides as it would have
    codes.fail.delete('c');
    await w.onBatch(r.log.batch(0, 0n), r.control());
    expect(await w.whenCommitted()).toBe(true);
    expect(gifticons(r)).toEqual(['u0', 'u1', 'u2']);
    const issued = r.log.events(0).filter((e) => e.type === 'GifticonIssued');
    for (const e of issued) expect(e).toMatchObject({ version: 2, sealedCode: expect.stringMatching(/^fcs1\./) });
    expect(auditCampaign(r.log.records.get(0)!, codes.open).problems).toEqual([]);
  });
});
