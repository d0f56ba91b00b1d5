import { describe, expect, it } from 'vitest';
import { replay } from '../../src/domain/campaign.js';
import { EVENT_VERSION, issuanceParked, SEALED_GIFTICON_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import { isoOf, needsOf, planBatch, usersOf, type Known, type KnownCampaign } from '../../projections/prisma-tables/plan.js';

const T0 = Date.parse('2026-11-25T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const base = (campaignId: string, at: number) => ({ version: EVENT_VERSION, campaignId, occurredAt: iso(at) });

const created = (id: string, stock: number, at = T0, closesAt = T0 + 3_600_000): CampaignEvent => ({
  ...base(id, at),
  type: 'CampaignCreated',
  eventId: `created:${id}`,
  title: 'Chicken',
  reward: 'Chicken gifticon',
  stock,
  opensAt: iso(T0),
  closesAt: iso(closesAt),
});
const entrant = (id: string, userId: string, at = T0 + 1000): CampaignEvent => ({
  ...base(id, at),
  type: 'EntrantRegistered',
  eventId: `entrant:${id}:${userId}:${Math.random()}`,
  userId,
});
const closed = (id: string, at: number): CampaignEvent => ({
  ...base(id, at),
  type: 'CampaignClosed',
  eventId: `closed:${id}`,
  reason: 'admin',
});

function logOf(events: CampaignEvent[], partition = 0, from = 0n): Logged[] {
  return events.map((event, i) => ({ event, partition, offset: from + BigInt(i) }));
}

const empty: Known = { campaigns: new Map(), placed: new Map() };

/** Applies a plan to an in-memory copy of the tables, the way the projector writes it. */
function tables() {
  const campaigns = new Map<string, KnownCampaign>();
  const entries = new Map<string, { position: number; status: string; ticket: string }>();
  return {
    campaigns,
    entries,
    known(batch: Logged[]): Known {
      const needs = needsOf(batch);
      const placed = new Map<string, Set<string>>();
      for (const [c, users] of usersOf(batch, new Set(needs.campaignIds)))
        placed.set(c, new Set(users.filter((u) => entries.has(`${c}/${u}`))));
      return { campaigns: new Map([...campaigns].filter(([id]) => needs.campaignIds.includes(id))), placed };
    },
    apply(batch: Logged[]) {
      const plan = planBatch(batch, this.known(batch));
      for (const c of plan.campaigns) {
        if (!campaigns.has(c.id))
          campaigns.set(c.id, {
            terms: { stock: c.stock, opensAt: c.opensAt.getTime(), closesAt: c.closesAt.getTime(), closedAt: null },
            entrants: 0,
          });
      }
      for (const e of plan.entries) {
        const key = `${e.campaignId}/${e.userId}`;
        if (entries.has(key)) throw new Error(`duplicate entry ${key}`);
        entries.set(key, { position: e.position, status: e.status, ticket: e.ticket });
      }
      for (const [id, ch] of plan.changes) {
        const c = campaigns.get(id)!;
        c.entrants += ch.entrants;
        if (ch.closedAt && c.terms.closedAt === null) c.terms.closedAt = ch.closedAt.getTime();
      }
      return plan;
    },
  };
}

describe('planBatch: positions as the decider gives them', () => {
  it('places distinct users in log order; a second click changes nothing; WON iff position <= stock', () => {
    const batch = logOf([created('c1', 2), entrant('c1', 'a'), entrant('c1', 'b'), entrant('c1', 'a'), entrant('c1', 'c')]);
    const plan = planBatch(batch, empty);
    expect(plan.campaigns.map((c) => c.id)).toEqual(['c1']);
    expect(plan.entries.map((e) => [e.userId, e.position, e.status, e.ticket])).toEqual([
      ['a', 1, 'WON', '0-1'],
      ['b', 2, 'WON', '0-2'],
      ['c', 3, 'LOST', '0-4'],
    ]);
    expect(plan.changes.get('c1')).toMatchObject({ entrants: 3, firstEntryAt: new Date(T0 + 1000) });
  });

  it('continues from the counters and users the tables already hold', () => {
    const known: Known = {
      campaigns: new Map([['c1', { terms: { stock: 2, opensAt: T0, closesAt: T0 + 3_600_000, closedAt: null }, entrants: 5 }]]),
      placed: new Map([['c1', new Set(['a'])]]),
    };
    const plan = planBatch(logOf([entrant('c1', 'a'), entrant('c1', 'z')], 1, 100n), known);
    expect(plan.entries.map((e) => [e.userId, e.position, e.status, e.ticket])).toEqual([['z', 6, 'LOST', '1-101']]);
  });

  it('judges each entry against the terms at its point of the log: entries after a close are not placed', () => {
    const batch = logOf([
      created('c1', 10),
      entrant('c1', 'a', T0 + 1000),
      closed('c1', T0 + 2000),
      entrant('c1', 'b', T0 + 3000),
      entrant('c1', 'early', T0 - 1),
    ]);
    const plan = planBatch(batch, empty);
    expect(plan.entries.map((e) => e.userId)).toEqual(['a']);
    expect(plan.changes.get('c1')!.closedAt).toEqual(new Date(T0 + 2000));
  });

  it("keeps an entry's date as the log wrote it, and rewrites any other form to the instant JavaScript reads", () => {
    const tokyo = { ...entrant('c1', 'b'), occurredAt: '2026-11-25T18:00:01+09:00' } as CampaignEvent;
    const plan = planBatch(logOf([created('c1', 5), entrant('c1', 'a'), tokyo]), empty);
    expect(plan.entries.map((e) => e.enteredAt)).toEqual([iso(T0 + 1000), iso(T0 + 1000)]);
    expect(isoOf('2026-11-25T09:00:01Z')).toBe('2026-11-25T09:00:01.000Z');
    const canonical = iso(T0);
    expect(isoOf(canonical)).toBe(canonical);
  });

  it('skips entries of unknown campaigns and a second CampaignCreated', () => {
    const again = { ...created('c1', 99), title: 'other' } as CampaignEvent;
    const plan = planBatch(logOf([entrant('nope', 'a'), created('c1', 1), again, entrant('c1', 'b')]), empty);
    expect(plan.campaigns).toHaveLength(1);
    expect(plan.campaigns[0]!.stock).toBe(1);
    expect(plan.entries.map((e) => [e.campaignId, e.userId])).toEqual([['c1', 'b']]);
  });

  it('agrees with the pure decider over a log split into any batches, and re-applying the log changes nothing', () => {
    const users = Array.from({ length: 40 }, (_, i) => `u${i % 29}`); // duplicates
    const events: CampaignEvent[] = [created('c1', 7, T0, T0 + 3_600_000), created('c2', 3)];
    users.forEach((u, i) => {
      events.push(entrant(i % 3 === 0 ? 'c2' : 'c1', u, T0 + 1000 + i));
      if (i === 30) events.push(closed('c2', T0 + 1000 + i));
    });
    const log = logOf(events);
    const t = tables();
    for (let i = 0; i < log.length; i += 6) t.apply(log.slice(i, i + 6));
    for (const id of ['c1', 'c2']) {
      const state = replay(log.filter((l) => l.event.campaignId === id));
      const mine = [...t.entries].filter(([k]) => k.startsWith(`${id}/`)).map(([k, v]) => [k.slice(id.length + 1), v.position, v.ticket]);
      expect(mine.sort()).toEqual([...state.places].map(([u, p]) => [u, p.position, p.ticket]).sort());
      expect(t.campaigns.get(id)!.entrants).toBe(state.places.size);
    }
    const before = JSON.stringify([...t.entries]);
    for (let i = 0; i < log.length; i += 11) {
      const plan = t.apply(log.slice(i, i + 11));
      expect(plan.entries).toEqual([]);
      expect(plan.campaigns).toEqual([]);
      for (const ch of plan.changes.values()) expect(ch.entrants).toBe(0);
    }
    expect(JSON.stringify([...t.entries])).toBe(before);
  });

  it('takes winners and gifticons from the decider events, with the gifticon offset as the issue order', () => {
    const plan = planBatch(
      logOf(
        [
          created('c1', 1),
          { ...base('c1', T0 + 5), type: 'WinnerSelected', eventId: 'winner:c1:a', userId: 'a', position: 1, ticket: '0-9' },
          {
            ...base('c1', T0 + 5),
            type: 'GifticonIssued',
            eventId: 'gifticon:c1:a',
            userId: 'a',
            gifticonId: 'g1',
            code: 'X',
            position: 1,
          },
          { ...base('c1', T0 + 5), type: 'CampaignSoldOut', eventId: 'soldout:c1', winners: 1 },
        ],
        0,
        40n,
      ),
      empty,
    );
    expect(plan.winners).toEqual([{ campaignId: 'c1', userId: 'a', position: 1, wonAt: new Date(T0 + 5) }]);
    expect(plan.gifticons).toEqual([
      { id: 'g1', campaignId: 'c1', userId: 'a', code: 'X', issuedAt: new Date(T0 + 5), expiresAt: null, logOffset: 42n },
    ]);
    expect(plan.changes.get('c1')!.soldOutAt).toEqual(new Date(T0 + 5));
  });

  it("keeps a PROVIDER winner's parkings (FAILED) and its voucher's expiry", () => {
    const winner = {
      ...base('c1', T0 + 5),
      type: 'WinnerSelected',
      eventId: 'winner:c1:a',
      userId: 'a',
      position: 1,
      ticket: '0-9',
    } as const;
    const plan = planBatch(
      logOf(
        [
          created('c1', 1),
          winner,
          issuanceParked(winner, 'issuer:c1:1', '1', new Date(T0 + 6)),
          issuanceParked(winner, 'issuer:c1:1', '7', new Date(T0 + 8)),
          {
            ...base('c1', T0 + 9),
            type: 'GifticonIssued',
            version: SEALED_GIFTICON_VERSION,
            eventId: 'gifticon:c1:a',
            userId: 'a',
            gifticonId: 'g1',
            sealedCode: 'k1:sealed',
            position: 1,
            voucherId: 'v1',
            expiresAt: iso(T0 + 90 * 24 * 3600_000),
          },
        ],
        0,
        40n,
      ),
      empty,
    );
    expect(plan.parkedIssuances).toEqual([
      { campaignId: 'c1', userId: 'a', at: new Date(T0 + 6) },
      { campaignId: 'c1', userId: 'a', at: new Date(T0 + 8) },
    ]);
    expect(plan.gifticons).toEqual([
      {
        id: 'g1',
        campaignId: 'c1',
        userId: 'a',
        code: 'k1:sealed',
        issuedAt: new Date(T0 + 9),
        expiresAt: new Date(T0 + 90 * 24 * 3600_000),
        logOffset: 44n,
      },
    ]);
  });
});
