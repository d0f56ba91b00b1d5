import { describe, expect, it } from 'vitest';
import { admit, decide, evolve, initialState, replay, statusOf, type CampaignState, type Minter } from '../../src/domain/campaign.js';
import { EVENT_VERSION, type CampaignEvent, type GifticonIssued, type Logged } from '../../src/domain/events.js';
import { memoryCodes } from '../support/codes.js';

const codes = memoryCodes();

const T0 = Date.parse('2026-11-25T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const NOW = new Date(T0 + 60_000);

function counterMinter(): Minter {
  let n = 0;
  return { code: () => `CODE-${++n}`, id: () => `g${n}` };
}

/** given-events / when / then, on one partition with offsets in order */
function spec(stock: number, opts: { opensAt?: number; closesAt?: number } = {}) {
  let offset = 0n;
  const log: Logged[] = [];
  const append = (event: CampaignEvent): Logged => {
    const l = { event, partition: 0, offset: offset++ };
    log.push(l);
    return l;
  };
  append({
    type: 'CampaignCreated',
    version: EVENT_VERSION,
    eventId: 'created:c1',
    campaignId: 'c1',
    occurredAt: iso(T0),
    title: 'Chicken',
    reward: 'Chicken gifticon',
    stock,
    opensAt: iso(opts.opensAt ?? T0),
    closesAt: iso(opts.closesAt ?? T0 + 3_600_000),
  });
  const mint = counterMinter();
  let state: CampaignState = evolve(initialState(), log[0]!);
  const decided: CampaignEvent[] = [];
  const run = (l: Logged) => {
    const out = decide(state, l, NOW, mint, codes.sealer);
    state = evolve(state, l);
    for (const e of out) {
      const ol = append(e);
      state = evolve(state, ol);
      decided.push(e);
    }
    return out;
  };
  return {
    log,
    decided,
    get state() {
      return state;
    },
    enter(userId: string, at = T0 + 1000) {
      return run(
        append({ type: 'EntrantRegistered', version: EVENT_VERSION, eventId: `e${offset}`, campaignId: 'c1', occurredAt: iso(at), userId }),
      );
    },
    close(at: number) {
      return run(
        append({
          type: 'CampaignClosed',
          version: EVENT_VERSION,
          eventId: 'closed:c1',
          campaignId: 'c1',
          occurredAt: iso(at),
          reason: 'admin',
        }),
      );
    },
  };
}

describe('campaign decider', () => {
  it('the first `stock` distinct users win, in log order, and the last unit sells out', () => {
    const s = spec(2);
    expect(s.enter('alice').map((e) => e.type)).toEqual(['WinnerSelected', 'GifticonIssued']);
    expect(s.enter('bob').map((e) => e.type)).toEqual(['WinnerSelected', 'GifticonIssued', 'CampaignSoldOut']);
    expect(s.enter('carol')).toEqual([]);
    const winners = s.decided.filter((e) => e.type === 'WinnerSelected');
    expect(winners.map((w) => [w.userId, w.position])).toEqual([
      ['alice', 1],
      ['bob', 2],
    ]);
    expect(s.state.places.get('carol')?.position).toBe(3);
    expect(s.state.soldOut).toBe(true);
  });

  it("a user's second entry changes nothing: same place, no second gifticon", () => {
    const s = spec(3);
    s.enter('alice');
    const before = s.state.places.get('alice');
    expect(s.enter('alice')).toEqual([]);
    expect(s.state.places.get('alice')).toEqual(before);
    expect(s.state.places.size).toBe(1);
    expect(s.decided.filter((e) => e.type === 'GifticonIssued')).toHaveLength(1);
    s.enter('bob');
    expect(s.state.places.get('bob')?.position).toBe(2);
  });

  it('nothing wins after sold out; late entrants get places beyond stock', () => {
    const s = spec(1);
    s.enter('a');
    for (const u of ['b', 'c', 'd']) expect(s.enter(u)).toEqual([]);
    expect([...s.state.places.values()].map((p) => p.position)).toEqual([1, 2, 3, 4]);
    expect(s.state.winners).toBe(1);
  });

  it('a campaign not yet open, or closed, places nobody', () => {
    const early = spec(5, { opensAt: T0 + 10_000 });
    expect(early.enter('a', T0 + 5_000)).toEqual([]);
    expect(early.state.places.size).toBe(0);
    expect(early.enter('a', T0 + 10_000)).toHaveLength(2);

    const late = spec(5, { closesAt: T0 + 2_000 });
    expect(late.enter('a', T0 + 2_000)).toEqual([]);
    expect(late.state.places.size).toBe(0);

    const closed = spec(5);
    closed.enter('a', T0 + 1_000);
    closed.close(T0 + 1_500);
    expect(closed.enter('b', T0 + 1_600)).toEqual([]);
    expect(closed.state.places.has('b')).toBe(false);
  });

  it('an entry appended after closing never wins, even if read after it', () => {
    const s = spec(5);
    s.close(T0 + 1_000);
    expect(s.enter('a', T0 + 999)).toHaveLength(2); // appended before the close took effect
    expect(s.enter('b', T0 + 1_001)).toEqual([]);
  });

  it('deciding the same log twice gives the same events (up to the minted codes)', () => {
    const s = spec(3);
    for (const u of ['a', 'b', 'a', 'c', 'd', 'b', 'e']) s.enter(u);
    const inputs = s.log.filter((l) => l.event.type === 'CampaignCreated' || l.event.type === 'EntrantRegistered');
    const again = spec(3);
    for (const l of inputs.slice(1)) again.enter((l.event as { userId: string }).userId, Date.parse(l.event.occurredAt));
    // each sealing draws its own IV: the codes are compared opened
    const strip = (es: CampaignEvent[]) =>
      es.map(({ occurredAt: _o, ...rest }) =>
        rest.type === 'GifticonIssued' && 'sealedCode' in rest ? { ...rest, sealedCode: codes.open(rest as GifticonIssued) } : rest,
      );
    expect(strip(again.decided)).toEqual(strip(s.decided));
    expect([...again.state.places]).toEqual([...s.state.places]);
  });

  it('the API gate and the status follow the same clock rules', () => {
    const terms = { stock: 2, opensAt: T0, closesAt: T0 + 1000, closedAt: null };
    expect(admit(terms, T0 - 1, 0)).toBe('NOT_OPEN');
    expect(admit(terms, T0, 0)).toBeNull();
    expect(admit(terms, T0, 2)).toBe('SOLD_OUT');
    expect(admit(terms, T0 + 1000, 0)).toBe('CLOSED');
    expect(admit({ ...terms, closedAt: T0 + 10 }, T0 + 10, 0)).toBe('CLOSED');
    expect(statusOf(terms, 0, T0 - 1)).toBe('SCHEDULED');
    expect(statusOf(terms, 1, T0)).toBe('OPEN');
    expect(statusOf(terms, 2, T0)).toBe('SOLD_OUT');
    expect(statusOf(terms, 2, T0 + 1000)).toBe('CLOSED');
  });
});

describe('the fold that owns its state (replay, the audit)', () => {
  it('comes to what the pure evolve comes to, step by step, and evolve still changes nothing it is given', () => {
    const s = spec(3, { closesAt: T0 + 10_000 });
    for (const u of ['a', 'b', 'a', 'c', 'd', 'e', 'b']) s.enter(u);
    s.close(T0 + 20_000);
    s.enter('late', T0 + 30_000);
    // the pure fold, keeping every intermediate state to check none of them changed afterwards
    const pure: CampaignState[] = [initialState()];
    const sizes: number[] = [0];
    for (const l of s.log) {
      pure.push(evolve(pure.at(-1)!, l));
      sizes.push(pure.at(-1)!.places.size);
    }
    expect(pure.map((st) => st.places.size)).toEqual(sizes);
    const owned = replay(s.log);
    const last = pure.at(-1)!;
    expect(owned.places).toEqual(last.places);
    expect(owned.issued).toEqual(last.issued);
    expect({ ...owned, places: null, issued: null }).toEqual({ ...last, places: null, issued: null });
    // the log had something to fold: five distinct entrants, three winners with gifticons, closed
    expect(owned.places.size).toBe(5);
    expect(owned.winners).toBe(3);
    expect(owned.issued.size).toBe(3);
    expect(owned.soldOut).toBe(true);
  });
});
