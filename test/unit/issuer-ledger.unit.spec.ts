import { describe, expect, it } from 'vitest';
import { EVENT_VERSION, issuanceRequested, SEALED_GIFTICON_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import { IssuerLedger } from '../../src/issuer/ledger.js';
import { idempotencyKey } from '../../src/issuer/keys.js';

const at = '2026-12-06T10:00:00.000Z';
const created = (campaignId: string, issuance?: 'MINTED' | 'PROVIDER'): CampaignEvent => ({
  type: 'CampaignCreated',
  version: EVENT_VERSION,
  eventId: `created:${campaignId}`,
  campaignId,
  occurredAt: at,
  title: 't',
  reward: 'r',
  stock: 10,
  opensAt: at,
  closesAt: at,
  ...(issuance && { issuance, product: 'p-1' }),
});
const winner = (campaignId: string, n: number): CampaignEvent => ({
  type: 'WinnerSelected',
  version: EVENT_VERSION,
  eventId: `winner:${campaignId}:u${n}`,
  campaignId,
  occurredAt: at,
  userId: `u${n}`,
  position: n,
  ticket: `0-${n}`,
});
const issued = (campaignId: string, n: number): CampaignEvent => ({
  type: 'GifticonIssued',
  version: SEALED_GIFTICON_VERSION,
  eventId: `gifticon:${campaignId}:u${n}`,
  campaignId,
  occurredAt: at,
  userId: `u${n}`,
  gifticonId: `g${n}`,
  sealedCode: 'fcs1.dk_x.AAAA',
  position: n,
});
const log = (events: [CampaignEvent, number][]): Logged[] =>
  events.map(([event, offset]) => ({ event, partition: 0, offset: BigInt(offset) }));

describe("the issuer's ledger", () => {
  it('wants the winners of PROVIDER campaigns only, and none that already holds a gifticon', () => {
    const l = new IssuerLedger();
    for (const e of [created('p', 'PROVIDER'), created('m'), created('old'), issued('p', 2)]) l.apply(e);
    expect(l.wants(winner('p', 1))).toEqual({ campaignId: 'p', userId: 'u1', position: 1, winnerEventId: 'winner:p:u1' });
    expect(l.wants(winner('p', 2))).toBeNull();
    expect(l.wants(winner('m', 1))).toBeNull();
    expect(l.wants(winner('unknown', 1))).toBeNull();
    l.markParked('p', 'u1');
    expect(l.wants(winner('p', 1))).toBeNull();
    expect(l.termsOf('p')).toEqual({ issuance: 'PROVIDER', product: 'p-1' });
  });

  it('wants a winner again on a request to drive its issuance, parked or not, but never one already issued', () => {
    const l = new IssuerLedger();
    for (const e of [created('p', 'PROVIDER'), issued('p', 2)]) l.apply(e);
    l.markParked('p', 'u1');
    const again = (n: number) => issuanceRequested({ campaignId: 'p', userId: `u${n}`, position: n }, 'retry:x:1', new Date(at));
    expect(l.wants(again(1))).toEqual({ campaignId: 'p', userId: 'u1', position: 1, winnerEventId: 'winner:p:u1' });
    expect(l.wants(again(3))).toMatchObject({ userId: 'u3', winnerEventId: 'winner:p:u3' });
    expect(l.wants(again(2))).toBeNull();
  });

  it('cuts a batch into chunks of winners that end at a record boundary, the last one at the batch end', () => {
    const l = new IssuerLedger();
    l.apply(created('p', 'PROVIDER'));
    // offsets 5 and 6 are packed records holding several winners each
    const chunks = l.chunks(
      log([
        [winner('p', 1), 5],
        [winner('p', 2), 5],
        [winner('p', 3), 5],
        [winner('p', 4), 6],
        [winner('p', 5), 6],
        [issued('p', 6), 7],
        [winner('p', 6), 8],
      ]),
      2,
    );
    expect(chunks.map((c) => [c.winners.map((w) => w.userId), c.lastOffset])).toEqual([
      [['u1', 'u2', 'u3'], 5n],
      [['u4', 'u5'], 6n],
      [[], 8n],
    ]);
  });

  it("a winner's key is the same for the same log and event, and another for another log", () => {
    const log1 = { clusterId: 'c', topic: 't', partitions: 2, logId: 'a' };
    const k = idempotencyKey(log1, 'winner:p:u1');
    expect(k).toMatch(/^fc-[A-Za-z0-9_-]{43}$/);
    expect(idempotencyKey({ ...log1 }, 'winner:p:u1')).toBe(k);
    expect(idempotencyKey({ ...log1, logId: 'b' }, 'winner:p:u1')).not.toBe(k);
    expect(idempotencyKey(log1, 'winner:p:u2')).not.toBe(k);
  });
});
