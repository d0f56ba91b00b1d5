import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { evolve, initialState, judge, type CampaignState, type CampaignTerms } from '../../src/domain/campaign.js';
import { EVENT_VERSION, ticketOf, type CampaignEvent, type EntrantRegistered, type Logged } from '../../src/domain/events.js';
import { lineWorkOf } from '../../src/writer/lineWork.js';
import { createRedis, Keys, RedisCampaignLines, RedisOrdering } from '../../projections/redis-ordering/index.js';

/**
 * place.lua held to the domain: random logs of two campaigns (repeated users, entries before the
 * opening and after the end, closes, a second CampaignCreated), cut at random batch boundaries,
 * some batches run twice (a writer that crashed mid-batch), some with the writer's terms forgotten
 * and read back from Redis (a restart). Each batch goes through the writer's own `lineWorkOf` and
 * the real Lua (the folder's adapter, real Redis); the domain folds the same log with `judge` and
 * `evolve`. Every entry must get the same answer (place and ticket, or rejection), and the line
 * must end the same. Seeded: a failure names its seed (FIRSTCOME_SEED=<n> runs that one alone).
 */

const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const ordering = new RedisOrdering(redis, `t:prop-${randomBytes(4).toString('hex')}`);
const lines = new RedisCampaignLines(ordering, 'prop', pino({ level: 'silent' }));

afterAll(async () => {
  const keys = [...(await redis.keys(ordering.keys.all())), ...(await redis.keys(new Keys(`${ordering.keys.prefix}-replay`).all()))];
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** mulberry32: a small seeded generator, so a failing case can be run again */
function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)), chance: (p: number) => next() < p };
}

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function randomLog(seed: number): Logged[] {
  const rand = seeded(seed);
  const ids = [`s${seed}-a`, `s${seed}-b`];
  const events: CampaignEvent[] = [];
  const base = { version: EVENT_VERSION, occurredAt: iso(T0 - 60_000) } as const;
  for (const id of ids) {
    const stock = rand.int(1, 4);
    events.push({
      ...base,
      type: 'CampaignCreated',
      eventId: `created:${id}`,
      campaignId: id,
      title: id,
      reward: 'r',
      stock,
      opensAt: iso(T0),
      closesAt: iso(T0 + rand.int(30, 90) * 1000),
    });
  }
  const users = Array.from({ length: rand.int(3, 12) }, (_, i) => `u${i}`);
  let clock = T0 - rand.int(0, 15) * 1000;
  const n = rand.int(20, 90);
  for (let i = 0; i < n; i++) {
    clock += rand.int(0, 3000);
    const campaignId = ids[rand.int(0, 1)]!;
    const roll = rand.next();
    if (roll < 0.06) {
      events.push({
        version: EVENT_VERSION,
        type: 'CampaignClosed',
        eventId: `closed:${campaignId}:${i}`,
        campaignId,
        occurredAt: iso(clock),
        reason: 'admin',
      });
    } else if (roll < 0.09) {
      // created once: a second CampaignCreated with other terms changes nothing
      events.push({
        ...base,
        occurredAt: iso(clock),
        type: 'CampaignCreated',
        eventId: `created:${campaignId}:${i}`,
        campaignId,
        title: 'again',
        reward: 'r',
        stock: 99,
        opensAt: iso(T0 - 3_600_000),
        closesAt: iso(T0 + 3_600_000),
      });
    } else {
      const userId = users[rand.int(0, users.length - 1)]!;
      events.push({
        version: EVENT_VERSION,
        type: 'EntrantRegistered',
        eventId: `entrant:${campaignId}:${userId}:${i}`,
        campaignId,
        occurredAt: iso(clock),
        userId,
      });
    }
  }
  return events.map((event, i) => ({ event, partition: 0, offset: BigInt(i) }));
}

type Answer = { position: number; ticket: string } | { rejection: string };

/** The domain's answer to every entry, folding the log in order. */
function domainAnswers(log: readonly Logged[]): { answers: Map<bigint, Answer>; states: Map<string, CampaignState> } {
  const states = new Map<string, CampaignState>();
  const answers = new Map<bigint, Answer>();
  for (const l of log) {
    const id = l.event.campaignId;
    const state = states.get(id) ?? initialState();
    if (l.event.type === 'EntrantRegistered') {
      const d = judge(state, l as Logged<EntrantRegistered>);
      answers.set(l.offset, d.kind === 'placed' ? { position: d.place.position, ticket: d.place.ticket } : { rejection: d.rejection });
    }
    states.set(id, evolve(state, l));
  }
  return { answers, states };
}

/** The writer's path: lineWorkOf and place.lua over Redis, batch by batch. */
async function luaAnswers(log: readonly Logged[], seed: number): Promise<Map<bigint, Answer>> {
  const rand = seeded(seed ^ 0x5eed);
  const terms = new Map<string, CampaignTerms>();
  const answers = new Map<bigint, Answer>();
  for (let from = 0; from < log.length;) {
    const batch = log.slice(from, from + rand.int(1, 12));
    if (rand.chance(0.2)) terms.clear(); // a restarted writer reads the terms back from Redis
    const runs = rand.chance(0.25) ? 2 : 1; // run again, as after a crash before the commit
    for (let run = 0; run < runs; run++) {
      const named = [...new Set(batch.filter((l) => l.event.type === 'EntrantRegistered').map((l) => l.event.campaignId))].filter(
        (id) => !terms.has(id),
      );
      for (const [id, t] of await lines.terms(named)) terms.set(id, t);
      const { work, entries, unknown } = lineWorkOf(batch, terms, () => false);
      expect(unknown).toEqual([]);
      const placed = await lines.place(0, work);
      if (placed === 'REBUILD') throw new Error(`seed ${seed}: place.lua asked for a rebuild`);
      work.lines.forEach((_, ci) =>
        entries[ci]!.forEach((l, i) => {
          const a = placed[ci]![i]!;
          const answer: Answer =
            a.kind === 'placed' ? { position: a.rank + 1, ticket: ticketOf(0, a.firstOffset) } : { rejection: a.rejection };
          if (run > 0)
            expect(answer, `seed ${seed}: offset ${l.offset} answered otherwise when its batch ran again`).toEqual(answers.get(l.offset));
          answers.set(l.offset, answer);
        }),
      );
    }
    from += batch.length;
  }
  return answers;
}

describe('place.lua against the domain', () => {
  const only = process.env.FIRSTCOME_SEED;
  const seeds = only ? [Number(only)] : Array.from({ length: 150 }, (_, i) => i + 1);

  it(`gives every entry the domain's answer and ends with the domain's line, over ${seeds.length} random logs cut at random batch boundaries`, async () => {
    let entries = 0;
    let repeatsAfterClose = 0;
    for (const seed of seeds) {
      const log = randomLog(seed);
      const { answers: expected, states } = domainAnswers(log);
      const actual = await luaAnswers(log, seed);
      for (const [offset, answer] of expected) expect(actual.get(offset), `seed ${seed}: entry at offset ${offset}`).toEqual(answer);
      expect(actual.size).toBe(expected.size);
      for (const [id, state] of states) {
        expect(await redis.zcard(ordering.keys.line(id)), `seed ${seed}: ${id}'s line`).toBe(state.places.size);
        for (const [userId, place] of state.places)
          expect(await ordering.entry(id, userId), `seed ${seed}: ${id}/${userId}`).toMatchObject({
            position: place.position,
            ticket: place.ticket,
          });
      }
      entries += expected.size;
      // the case the two paths once disagreed on: a user already in line entering again after a close
      for (const l of log) {
        const e = l.event;
        if (e.type !== 'EntrantRegistered') continue;
        const terms = states.get(e.campaignId)!.terms!;
        const a = expected.get(l.offset)!;
        if ('ticket' in a && a.ticket !== ticketOf(0, l.offset) && terms.closedAt !== null && terms.closedAt <= Date.parse(e.occurredAt))
          repeatsAfterClose++;
      }
    }
    // the generator must reach the cases it is for
    expect(entries).toBeGreaterThan(seeds.length * 10);
    if (!only) expect(repeatsAfterClose).toBeGreaterThan(10);
  });
});

describe('replayLine.lua, a rebuild re-applying lines decided before', () => {
  const replayOrdering = new RedisOrdering(redis, `${ordering.keys.prefix}-replay`);
  const replayLines = new RedisCampaignLines(replayOrdering, 'prop-replay', pino({ level: 'silent' }));

  it('ends with the line place.lua and the domain end with, clears the pending marks, and answers no entry', async () => {
    let replayedLines = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const log = randomLog(seed);
      const { states } = domainAnswers(log);
      const rand = seeded(seed ^ 0x7e91a);
      // entries in flight when Redis was lost left pending marks: a replay clears them as place.lua does
      for (const l of log)
        if (l.event.type === 'EntrantRegistered') await redis.hset(replayOrdering.keys.pending(l.event.campaignId), l.event.userId, 'x');
      const terms = new Map<string, CampaignTerms>();
      for (let from = 0; from < log.length;) {
        const batch = log.slice(from, from + rand.int(1, 30));
        const { work } = lineWorkOf(batch, terms, () => true);
        const placed = await replayLines.place(0, work);
        if (placed === 'REBUILD') throw new Error(`seed ${seed}: replayLine.lua asked for a rebuild`);
        for (const line of work.lines) expect(line.replayed).toBe(true);
        expect(placed.every((answers) => answers.length === 0)).toBe(true);
        replayedLines += work.lines.length;
        from += batch.length;
      }
      // the campaigns were re-created `building`, as in a rebuild, which ends them
      expect(await replayLines.finishRebuild(0, states.keys())).toBe(true);
      for (const [id, state] of states) {
        expect(await redis.zcard(replayOrdering.keys.line(id)), `seed ${seed}: ${id}'s line`).toBe(state.places.size);
        for (const [userId, place] of state.places)
          expect(await replayOrdering.entry(id, userId), `seed ${seed}: ${id}/${userId}`).toMatchObject({
            position: place.position,
            ticket: place.ticket,
          });
        expect(await redis.hlen(replayOrdering.keys.pending(id)), `seed ${seed}: ${id}'s pending marks`).toBe(0);
      }
    }
    expect(replayedLines).toBeGreaterThan(60);
  });
});
