import { describe, expect, it } from 'vitest';
import { auditCampaign as auditWith, auditLog as auditLogWith } from '../../src/domain/audit.js';
import { decide, evolve, initialState, type Minter } from '../../src/domain/campaign.js';
import { EVENT_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';

import { memoryCodes } from '../support/codes.js';

const T0 = Date.parse('2026-11-25T09:00:00Z');
/** the decider seals its codes; the audit opens them with the same keys */
const codes = memoryCodes();
const auditCampaign = (log: Logged[]) => auditWith(log, codes.open);
const auditLog = (log: Logged[]) => auditLogWith(log, codes.open);

/** Full-shape codes (26 symbols) that differ in the last group: n-th code of a minter. */
const nthCode = (n: number) =>
  `AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-${String(n)
    .padStart(2, '0')
    .replace(/\d/g, (d) => 'ABCDEFGHJK'[Number(d)]!)}`;

function decidedLog(stock: number, users: string[], campaignId = 'c', firstCode = 1, firstOffset = 0n): Logged[] {
  let offset = firstOffset;
  let n = firstCode - 1;
  const mint: Minter = { code: () => nthCode(++n), id: () => `g${campaignId}${n}` };
  const log: Logged[] = [];
  let state = initialState();
  const push = (event: CampaignEvent) => {
    const l = { event, partition: 0, offset: offset++ };
    log.push(l);
    const out = decide(state, l, new Date(T0), mint, codes.sealer);
    state = evolve(state, l);
    for (const e of out) push(e);
  };
  push({
    type: 'CampaignCreated',
    version: EVENT_VERSION,
    eventId: `created:${campaignId}`,
    campaignId,
    occurredAt: new Date(T0).toISOString(),
    title: 't',
    reward: 'r',
    stock,
    opensAt: new Date(T0).toISOString(),
    closesAt: new Date(T0 + 3600_000).toISOString(),
  });
  for (const u of users)
    push({
      type: 'EntrantRegistered',
      version: EVENT_VERSION,
      eventId: `e${offset}`,
      campaignId,
      occurredAt: new Date(T0 + 1).toISOString(),
      userId: u,
    });
  return log;
}

describe('auditCampaign', () => {
  it('passes a log decided by the decider', () => {
    const a = auditCampaign(decidedLog(3, ['a', 'b', 'a', 'c', 'd', 'e']));
    expect(a.problems).toEqual([]);
    expect(a).toMatchObject({ ok: true, stock: 3, entrants: 5, winners: 3, gifticons: 3 });
  });

  it('catches an over-issue, a wrong winner and a doubled gifticon', () => {
    const log = decidedLog(2, ['a', 'b', 'c']);
    const extra = log.filter((l) => l.event.type === 'WinnerSelected' || l.event.type === 'GifticonIssued').slice(0, 2);
    const doubled = [...log, ...extra.map((l, i) => ({ ...l, offset: 100n + BigInt(i) }))];
    const a = auditCampaign(doubled);
    expect(a.ok).toBe(false);
    expect(a.problems.join('\n')).toMatch(/selected twice/);
    expect(a.problems.join('\n')).toMatch(/second gifticon/);

    const wrong = log.map((l) =>
      l.event.type === 'WinnerSelected' && l.event.userId === 'b' ? { ...l, event: { ...l.event, userId: 'c' } } : l,
    );
    const b = auditCampaign(wrong);
    expect(b.ok).toBe(false);
    expect(b.problems.join('\n')).toMatch(/I3/);
  });

  it('catches a missing winner (lost decision)', () => {
    const log = decidedLog(2, ['a', 'b', 'c']).filter((l) => !(l.event.type === 'WinnerSelected' && l.event.userId === 'b'));
    const a = auditCampaign(log);
    expect(a.problems.join('\n')).toMatch(/I1/);
  });
});

describe('the audit holds codes to I2', () => {
  const withCode = (log: Logged[], code: string) =>
    log.map((l, i) =>
      l.event.type === 'GifticonIssued' && i === log.findIndex((x) => x.event.type === 'GifticonIssued')
        ? { ...l, event: { ...l.event, sealedCode: codes.sealer.seal(l.event.campaignId, code) } }
        : l,
    );

  it('passes a log with full-shape codes', () => {
    expect(auditCampaign(decidedLog(2, ['a', 'b'])).problems).toEqual([]);
  });

  it('rejects a code cut short, even one whose groups look like codes (10 symbols, 50 bits)', () => {
    const a = auditCampaign(withCode(decidedLog(2, ['a', 'b']), 'AAAA-BBBB-C-D-E-F-G'));
    expect(a.ok).toBe(false);
    expect(a.problems).toContain('I2: a gifticon code has the wrong shape');
  });

  it('rejects a code one symbol short of 26, and one with a letter Crockford leaves out', () => {
    expect(auditCampaign(withCode(decidedLog(1, ['a']), 'AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-A')).ok).toBe(false);
    expect(auditCampaign(withCode(decidedLog(1, ['a']), 'AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-AU')).ok).toBe(false);
  });

  it('passes campaigns whose codes all differ', () => {
    const log = [...decidedLog(2, ['a', 'b'], 'c1', 1), ...decidedLog(2, ['a', 'b'], 'c2', 3, 100n)];
    const a = auditLog(log);
    expect(a.problems).toEqual([]);
    expect([...a.campaigns.keys()]).toEqual(['c1', 'c2']);
    expect(a.campaigns.get('c2')).toMatchObject({ ok: true, winners: 2, gifticons: 2 });
  });

  it('rejects a code issued in one campaign and again in another, which neither campaign alone shows', () => {
    // the second campaign's minter starts where the first one's did: its first code repeats
    const first = decidedLog(2, ['a', 'b'], 'c1', 1);
    const second = decidedLog(2, ['x', 'y'], 'c2', 1, 100n);
    expect(auditCampaign(first).ok).toBe(true);
    expect(auditCampaign(second).ok).toBe(true);
    const a = auditLog([...first, ...second]);
    expect(a.ok).toBe(false);
    expect(a.acrossCampaigns).toEqual([
      'I2: a gifticon code of c1 was issued again in c2',
      'I2: a gifticon code of c1 was issued again in c2',
    ]);
    expect(a.problems).toEqual(a.acrossCampaigns);
  });

  it('names the campaign of a problem found inside one campaign', () => {
    const second = decidedLog(2, ['x', 'y'], 'c2', 3, 100n).filter((l) => !(l.event.type === 'WinnerSelected' && l.event.userId === 'y'));
    const a = auditLog([...decidedLog(2, ['a', 'b'], 'c1', 1), ...second]);
    expect(a.ok).toBe(false);
    expect(a.problems.some((p) => p.startsWith('c2: I1'))).toBe(true);
    expect(a.campaigns.get('c1')!.ok).toBe(true);
  });
});

describe('I6 for a PROVIDER campaign', () => {
  /** a PROVIDER drop decided by the decider (no gifticon at the decision), then `vouchers` given by the issuer */
  function providerLog(users: string[], vouchers: Record<string, string>): Logged[] {
    const log = decidedLog(users.length, users, 'p').map((l) =>
      l.event.type === 'CampaignCreated' ? { ...l, event: { ...l.event, issuance: 'PROVIDER' as const, product: 'x' } } : l,
    );
    // decided as MINTED above: the minted gifticons are not this campaign's
    const out = log.filter((l) => l.event.type !== 'GifticonIssued');
    let offset = 1000n;
    for (const [user, voucherId] of Object.entries(vouchers)) {
      const w = out.find((l) => l.event.type === 'WinnerSelected' && l.event.userId === user)!.event as { position: number };
      out.push({
        event: {
          type: 'GifticonIssued',
          version: 2,
          eventId: `gifticon:p:${user}`,
          campaignId: 'p',
          occurredAt: new Date(T0).toISOString(),
          userId: user,
          gifticonId: `g-${user}`,
          sealedCode: codes.sealer.seal('p', `CODE-${user}`),
          position: w.position,
          voucherId,
          expiresAt: new Date(T0 + 86_400_000).toISOString(),
        },
        partition: 0,
        offset: offset++,
      });
    }
    return out;
  }
  const parked = (...users: string[]) => ({ openParked: (_: string, u: string) => users.includes(u) });

  it('holds when each winner has exactly one voucher or one open parked issuance', () => {
    const a = auditWith(providerLog(['a', 'b', 'c'], { a: 'v1', b: 'v2' }), codes.open, parked('c'));
    expect(a.problems).toEqual([]);
    expect(a.gifticons).toBe(2);
  });

  it('finds a winner left with neither, and one with both', () => {
    const a = auditWith(providerLog(['a', 'b', 'c'], { a: 'v1', b: 'v2' }), codes.open, parked('a'));
    expect(a.problems).toEqual(['I6: a holds a voucher and an open parked issuance', 'I6: c has neither a voucher nor a parked issuance']);
  });

  it('finds one provider voucher given to two winners, and a gifticon naming none', () => {
    const twice = auditWith(providerLog(['a', 'b'], { a: 'v1', b: 'v1' }), codes.open);
    expect(twice.problems).toEqual(["I6: the provider's voucher v1 was given to two winners"]);
    const log = providerLog(['a'], { a: 'v1' });
    delete (log.at(-1)!.event as { voucherId?: string }).voucherId;
    expect(auditWith(log, codes.open).problems).toEqual(["I6: a's gifticon names no provider voucher"]);
  });

  it('reads a winner without a voucher as pending when it is not told about parked issuances', () => {
    expect(auditWith(providerLog(['a', 'b'], { a: 'v1' }), codes.open).problems).toEqual([]);
  });
});
