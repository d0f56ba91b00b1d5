import { describe, expect, it } from 'vitest';
import { auditCampaign } from '../../src/domain/audit.js';
import { decide, evolve, initialState, type Minter } from '../../src/domain/campaign.js';
import { EVENT_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';

const T0 = Date.parse('2026-11-25T09:00:00Z');

function decidedLog(stock: number, users: string[]): Logged[] {
  let offset = 0n;
  let n = 0;
  const mint: Minter = { code: () => `AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-${String(++n).padStart(2, '0').replace(/\d/g, (d) => 'ABCDEFGHJK'[Number(d)]!)}`, id: () => `g${n}` };
  const log: Logged[] = [];
  let state = initialState();
  const push = (event: CampaignEvent) => {
    const l = { event, partition: 0, offset: offset++ };
    log.push(l);
    const out = decide(state, l, new Date(T0), mint);
    state = evolve(state, l);
    for (const e of out) push(e);
  };
  push({ type: 'CampaignCreated', version: EVENT_VERSION, eventId: 'created:c', campaignId: 'c', occurredAt: new Date(T0).toISOString(), title: 't', reward: 'r', stock, opensAt: new Date(T0).toISOString(), closesAt: new Date(T0 + 3600_000).toISOString() });
  for (const u of users) push({ type: 'EntrantRegistered', version: EVENT_VERSION, eventId: `e${offset}`, campaignId: 'c', occurredAt: new Date(T0 + 1).toISOString(), userId: u });
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
