import { describe, expect, it } from 'vitest';
import { waitUntil } from '../support/wait.js';
import { type CampaignEvent, type LineHeadSigned } from '../../src/domain/events.js';
import { FairnessKey, leafOf, verifyHead } from '../../src/domain/fairness/line.js';
import { MerkleTree, toHex } from '../../src/domain/fairness/merkle.js';
import { LineHeads } from '../../src/writer/lineHeads.js';
import { closed, created, entrant, rig, type Rig } from '../support/writerPorts.js';

const KEY = FairnessKey.parse('t1:MC4CAQAwBQYDK2VwBCIEIHMUBnGS0Qyt/4z2pQSZPjcEpQ1/mcCfBYmj0G/P87Q9');
const KEYS = new Map([[KEY.keyId, KEY.publicPem()]]);

const headsOf = (r: Rig) => r.log.events(0).filter((e): e is LineHeadSigned => e.type === 'LineHeadSigned');

/** The line's root computed apart from the writer: first entries of distinct users, in log order. */
function expectedRoot(r: Rig, campaignId: string, size: number): string {
  const tree = new MerkleTree();
  const seen = new Set<string>();
  for (const l of r.log.records.get(0)!) {
    const e = l.event;
    if (e.type !== 'EntrantRegistered' || e.campaignId !== campaignId || seen.has(e.userId) || seen.size >= size) continue;
    seen.add(e.userId);
    tree.appendLeaf(leafOf(campaignId, seen.size, `0-${l.offset}`, e.userId, KEY.nonce(campaignId, e.userId)));
  }
  return toHex(tree.root());
}

describe('the single writer’s signed line heads', () => {
  it('signs a head over the batch’s new entrants, in the same commit as its decisions', async () => {
    const r = rig({ fairness: KEY });
    r.log.append(0, created('c', 3));
    for (let i = 0; i < 5; i++) r.log.append(0, entrant('c', `u${i}`));
    r.log.append(0, entrant('c', 'u1', 1));
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    expect(await w.whenCommitted()).toBe(true);
    expect(r.sink.calls.commit).toBe(1);
    const [head, ...more] = headsOf(r);
    expect(more).toEqual([]);
    expect(head).toMatchObject({ campaignId: 'c', size: 5, final: false, keyId: 't1', at: '2026-11-29T12:00:00.000Z' });
    expect(head!.root).toBe(expectedRoot(r, 'c', 5));
    expect(verifyHead(head!, KEYS)).toBe(true);
  });

  it('signs the final head at close, over the whole line, at the close’s log time', async () => {
    const r = rig({ fairness: KEY });
    r.log.append(0, created('c', 3));
    r.log.append(0, entrant('c', 'u0'));
    r.log.append(0, entrant('c', 'u1'));
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    const close: CampaignEvent = { ...closed('c'), occurredAt: '2026-11-29T12:30:00.000Z' };
    r.log.append(0, close);
    await w.onBatch(r.log.batch(0, w.committed), r.control());
    expect(await w.whenCommitted()).toBe(true);
    const final = headsOf(r).filter((h) => h.final);
    expect(final).toHaveLength(1);
    expect(final[0]).toMatchObject({ size: 2, at: '2026-11-29T12:30:00.000Z', root: expectedRoot(r, 'c', 2) });
    expect(verifyHead(final[0]!, KEYS)).toBe(true);
  });

  it('signs one final head: a second close (the schedule racing an admin) signs nothing more, even in a writer started again', async () => {
    const r = rig({ fairness: KEY });
    r.log.append(0, created('c', 3));
    r.log.append(0, entrant('c', 'u0'));
    r.log.append(0, { ...closed('c'), occurredAt: '2026-11-29T12:30:00.000Z' });
    const first = await r.writer();
    await first.onBatch(r.log.batch(0, 0n), r.control());
    await first.whenCommitted();
    await first.retire();
    r.log.append(0, { ...closed('c'), occurredAt: '2026-11-29T13:00:00.000Z' });
    const second = await r.writer();
    await second.onBatch(r.log.batch(0, second.committed), r.control());
    await second.whenCommitted();
    expect(
      headsOf(r)
        .filter((h) => h.final)
        .map((h) => [h.size, h.at]),
    ).toEqual([[1, '2026-11-29T12:30:00.000Z']]);
  });

  it('a writer started again reads the tree back from the line, and its next head covers the whole line', async () => {
    const r = rig({ fairness: KEY });
    r.log.append(0, created('c', 10));
    for (let i = 0; i < 7; i++) r.log.append(0, entrant('c', `u${i}`));
    const first = await r.writer();
    await first.onBatch(r.log.batch(0, 0n), r.control());
    await first.whenCommitted();
    await first.retire();

    r.log.append(0, entrant('c', 'late'));
    const second = await r.writer();
    await second.onBatch(r.log.batch(0, second.committed), r.control());
    expect(await second.whenCommitted()).toBe(true);
    const last = headsOf(r).at(-1)!;
    expect(last.size).toBe(8);
    expect(last.root).toBe(expectedRoot(r, 'c', 8));
  });

  it('a head held back by the pace commits on its own once the partition is idle and the pace allows', async () => {
    const r = rig({ fairness: KEY, headEveryMs: 200 });
    r.log.append(0, created('c', 10));
    r.log.append(0, entrant('c', 'u0'));
    const w = await r.writer();
    await w.onBatch(r.log.batch(0, 0n), r.control());
    await w.whenCommitted();
    r.log.append(0, entrant('c', 'u1'));
    await w.onBatch(r.log.batch(0, w.committed), r.control());
    await w.whenCommitted();
    // within the pace: the second entrant is placed, no head covers it yet
    expect(headsOf(r).map((h) => h.size)).toEqual([1]);
    await waitUntil(
      async () => {
        w.commitIdleTail();
        await w.whenCommitted();
        return headsOf(r).length;
      },
      (n) => n === 2,
      { what: 'a head of the idle partition', timeoutMs: 5000, everyMs: 50 },
    );
    expect(headsOf(r).map((h) => [h.size, h.root])).toEqual([
      [1, expectedRoot(r, 'c', 1)],
      [2, expectedRoot(r, 'c', 2)],
    ]);
    expect(r.log.committed.get(0)).toBe(w.committed);
  });

  it('makes at most one head a second per campaign, sell-out aside, and a due head once the second has passed', async () => {
    const line: { userId: string; offset: bigint }[] = [];
    const heads = new LineHeads(KEY, 0, async () => line);
    const leaf = (n: number) => {
      line.push({ userId: `u${n}`, offset: BigInt(n) });
      return { position: n, ticket: `0-${n}`, userId: `u${n}`, at: `2026-11-29T12:00:0${n}.000Z` };
    };
    const none = new Set<string>();
    const noClose = new Map<string, string>();
    expect((await heads.heads(new Map([['c', [leaf(1)]]]), none, noClose, 10_000)).map((h) => h.size)).toEqual([1]);
    expect(await heads.heads(new Map([['c', [leaf(2)]]]), none, noClose, 10_400)).toEqual([]);
    expect(heads.due(10_900)).toEqual([]);
    expect(heads.due(11_000).map((h) => [h.size, h.at])).toEqual([[2, '2026-11-29T12:00:02.000Z']]);
    expect(heads.due(13_000)).toEqual([]);
    // a sell-out signs at once
    expect((await heads.heads(new Map([['c', [leaf(3)]]]), new Set(['c']), noClose, 13_100)).map((h) => h.size)).toEqual([3]);
  });
});
