import { describe, expect, it } from 'vitest';
import { auditCampaign } from '../../src/domain/audit.js';
import type { CampaignEvent, Logged } from '../../src/domain/events.js';
import { chunkIdOf, codesLoaded } from '../../src/domain/inventory.js';
import { newDataKey, openCode } from '../../src/domain/sealing.js';
import { PartitionWriter } from '../../src/writer/partitionWriter.js';
import { created, entrant, rig, type Rig } from '../support/writerPorts.js';

/** The single writer issuing an INVENTORY campaign's loaded codes, over in-memory ports. */
const dk = newDataKey('c');
const chunk = (codes: string[]) => codesLoaded(dk, chunkIdOf(codes), codes, new Date());
const open = (e: Extract<CampaignEvent, { type: 'GifticonIssued' }>) => ('sealedCode' in e ? openCode(dk, e.sealedCode) : e.code);

const issued = (r: Rig) => r.log.events(0).flatMap((e) => (e.type === 'GifticonIssued' ? [[e.position, e.userId, open(e)] as const] : []));

async function run(r: Rig, w: Awaited<ReturnType<Rig['writer']>>) {
  await w.onBatch(r.log.batch(0, w.committed), r.control());
  expect(await w.whenCommitted()).toBe(true);
}

describe('a partition writer, INVENTORY', () => {
  it('the k-th winner gets the k-th code kept; winners short wait, and a later chunk issues them in position order', async () => {
    const r = rig();
    r.log.append(0, { ...created('c', 3), issuance: 'INVENTORY' } as CampaignEvent);
    r.log.append(0, chunk(['A']));
    for (let i = 0; i < 4; i++) r.log.append(0, entrant('c', `u${i}`));
    const w = await r.writer();
    await run(r, w);
    expect(issued(r)).toEqual([[1, 'u0', 'A']]);
    // A again is a duplicate: B and C go to positions 2 and 3, D is kept for no one
    r.log.append(0, chunk(['A', 'B', 'C', 'D']));
    await run(r, w);
    expect(issued(r)).toEqual([
      [1, 'u0', 'A'],
      [2, 'u1', 'B'],
      [3, 'u2', 'C'],
    ]);
    // the same chunk again changes nothing, and no winner gets a second code
    r.log.append(0, chunk(['A', 'B', 'C', 'D']));
    await run(r, w);
    expect(issued(r)).toHaveLength(3);
    const audit = auditCampaign(r.log.records.get(0)!, open);
    expect(audit.problems).toEqual([]);
    expect(audit).toMatchObject({ winners: 3, gifticons: 3 });
  });

  it('a writer killed after a chunk reached Redis, before the issuance it brought committed: the next writer issues it, once', async () => {
    const r = rig();
    r.log.append(0, { ...created('c', 2), issuance: 'INVENTORY' } as CampaignEvent);
    r.log.append(0, entrant('c', 'u0'));
    r.log.append(0, entrant('c', 'u1'));
    const killed = await r.writer();
    await run(r, killed);
    expect(issued(r)).toEqual([]);
    r.log.append(0, chunk(['A', 'B']));
    // its commit never lands: the process dies with it open
    r.sink.gate = new Promise<void>(() => undefined);
    await killed.onBatch(r.log.batch(0, killed.committed), r.control());
    expect(r.lines.codes.get('c')?.kept).toHaveLength(2);
    r.sink.gate = null;
    const next = await r.writer();
    await run(r, next);
    expect(issued(r)).toEqual([
      [1, 'u0', 'A'],
      [2, 'u1', 'B'],
    ]);
    expect(auditCampaign(r.log.records.get(0)!, open).problems).toEqual([]);
  });

  it('the audit finds a winner holding another position’s code (I6)', async () => {
    const r = rig();
    r.log.append(0, { ...created('c', 2), issuance: 'INVENTORY' } as CampaignEvent);
    r.log.append(0, chunk(['A', 'B']));
    r.log.append(0, entrant('c', 'u0'));
    r.log.append(0, entrant('c', 'u1'));
    await run(r, await r.writer());
    const log = r.log.records.get(0)!;
    expect(auditCampaign(log, open).problems).toEqual([]);
    // the two gifticons' codes swapped
    const gifts = log.filter((l) => l.event.type === 'GifticonIssued') as Logged<Extract<CampaignEvent, { sealedCode: string }>>[];
    const [a, b] = gifts.map((l) => l.event.sealedCode);
    const swapped = log.map((l) =>
      l === gifts[0]
        ? { ...l, event: { ...gifts[0]!.event, sealedCode: b! } }
        : l === gifts[1]
          ? { ...l, event: { ...gifts[1]!.event, sealedCode: a! } }
          : l,
    );
    expect(auditCampaign(swapped, open).problems).toEqual([
      'I6: u0 at 1 does not hold the 1-th loaded code',
      'I6: u1 at 2 does not hold the 2-th loaded code',
    ]);
    // each holding its own code, but the winner at 2 issued while the one at 1 waited
    const [first, second] = [log.indexOf(gifts[0]!), log.indexOf(gifts[1]!)];
    const reordered = log.map((l, i) => (i === first ? gifts[1]! : i === second ? gifts[0]! : l));
    expect(auditCampaign(reordered, open).problems).toEqual(['I6: u1 at 2 was issued while the winner at 1 waited']);
  });
});

describe('two partitions of one writer process, INVENTORY', () => {
  it("a failed commit of one partition leaves the other's issuance in flight alone: no winner gets a second code", async () => {
    const r = rig();
    // partition 1 commits slowly; partition 0's next commit fails before it lands
    let release!: () => void;
    r.sink.gate = new Promise<void>((go) => (release = go));
    const commit = r.sink.commit.bind(r.sink);
    r.sink.commit = async (partition, outputs, next) => {
      if (partition === 0) throw new Error('injected: the transaction of partition 0 failed');
      return commit(partition, outputs, next);
    };
    const settled = async (partition: number) => {
      const w = new PartitionWriter(partition, r.shared);
      await w.settle(0n);
      return w;
    };
    const [w0, w1] = await Promise.all([settled(0), settled(1)]);
    r.log.append(1, { ...created('c', 2), issuance: 'INVENTORY' } as CampaignEvent);
    r.log.append(1, chunk(['A', 'B']));
    r.log.append(1, entrant('c', 'u0'));
    // u0 is issued A; that commit is in flight, so Redis does not show u0's gifticon yet
    await w1.onBatch(r.log.batch(1, 0n), r.control());
    r.log.append(0, created('m', 1));
    r.log.append(0, entrant('m', 'x'));
    await w0.onBatch(r.log.batch(0, 0n), r.control());
    expect(await w0.whenCommitted()).toBe(false);
    // the next batch of partition 1 is decided while its commit is still in flight
    r.log.append(1, entrant('c', 'u1'));
    const next = w1.onBatch(r.log.batch(1, 3n), r.control());
    // u1 is told its place once the batch is decided: only then may the first commit land
    for (let turns = 0; !r.replies.told.some((t) => t.userId === 'u1'); turns++) {
      expect(turns, 'the batch of u1 was never decided').toBeLessThan(1000);
      await new Promise((go) => setImmediate(go));
    }
    release();
    await next;
    expect(await w1.whenCommitted()).toBe(true);
    const gifts = r.log.events(1).flatMap((e) => (e.type === 'GifticonIssued' ? [[e.userId, open(e)]] : []));
    expect(gifts).toEqual([
      ['u0', 'A'],
      ['u1', 'B'],
    ]);
    expect(auditCampaign(r.log.records.get(1)!, open).problems).toEqual([]);
  });
});
