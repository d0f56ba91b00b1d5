import { describe, expect, it } from 'vitest';
import { PowChallenges, type PowChallenge } from '../../src/api/challenge.js';
import { powSolution, solvePow } from '../../src/cli/pow.js';
import { replay } from '../../src/domain/campaign.js';
import { CHALLENGE_OFF, challengeSetting, evolveChallenge, judgeSolution } from '../../src/domain/challenge.js';
import { campaignChallengeSet, EVENT_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import { decodeValue, toMessage } from '../../src/infra/kafka/codec.js';
import { planBatch } from '../../projections/prisma-tables/plan.js';
import { challengeOf } from '../../projections/redis-ordering/answers.js';

const SECRET = 'unit-challenge-secret-0123456789';
const POW = { mode: 'POW', difficulty: 1000 } as const;
const T0 = Date.parse('2026-12-06T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

const created = (id: string, challenge?: { mode: 'OFF' | 'POW'; difficulty: number | null }): CampaignEvent => ({
  type: 'CampaignCreated',
  version: EVENT_VERSION,
  eventId: `created:${id}`,
  campaignId: id,
  occurredAt: iso(T0),
  title: 'Chicken',
  reward: 'Chicken gifticon',
  stock: 10,
  opensAt: iso(T0),
  closesAt: iso(T0 + 3_600_000),
  ...(challenge ? { challenge } : {}),
});
/** the parameters a challenge's salt carries (signed with it) */
const paramsOf = (c: PowChallenge) => Object.fromEntries(new URLSearchParams(c.salt.split('?')[1] ?? ''));
const logOf = (events: CampaignEvent[]): Logged[] => events.map((event, i) => ({ event, partition: 0, offset: BigInt(i) }));

describe('a proof-of-work challenge, issued and checked (altcha-lib v1)', () => {
  const pow = new PowChallenges(SECRET);
  const issued = async (campaignId = 'drop', userId = 'alice', now = Date.now()) => (await pow.issue(campaignId, userId, POW, now))!;

  it('is null while the campaign asks for none, and carries the difficulty as maxnumber', async () => {
    expect(await pow.issue('drop', 'alice', CHALLENGE_OFF)).toBeNull();
    const c = await issued();
    expect(c).toMatchObject({ algorithm: 'SHA-256', maxnumber: 1000 });
    expect((await pow.issue('drop', 'alice', { mode: 'POW', difficulty: 5000 }))!.maxnumber).toBe(5000);
    // bound to campaign and user, and expiring within a minute, in the signed salt
    const params = paramsOf(c);
    expect(params).toMatchObject({ c: 'drop', u: 'alice' });
    expect(Number(params.expires) * 1000 - Date.now()).toBeLessThanOrEqual(60_000);
    expect(Number(params.expires) * 1000 - Date.now()).toBeGreaterThan(50_000);
  });

  it('a solved challenge holds for its campaign and user, once named by its challenge', async () => {
    const c = await issued();
    const checked = await pow.check(await solvePow(c), 'drop', 'alice');
    expect(checked).toEqual({ challenge: c.challenge, expiresAt: Number(paramsOf(c).expires) * 1000 });
  });

  it('refuses a wrong number, a forged salt, another server secret, and what is not a payload', async () => {
    const c = await issued();
    const right = JSON.parse(Buffer.from(await solvePow(c), 'base64').toString()) as { number: number };
    expect(await pow.check(powSolution(c, (right.number + 1) % 1000), 'drop', 'alice')).toEqual({ fault: 'wrong' });
    // the salt names the user: rewritten, the signature no longer covers it
    const forged: PowChallenge = { ...c, salt: c.salt.replace('u=alice', 'u=mallory') };
    expect(forged.salt).not.toBe(c.salt);
    expect(await pow.check(powSolution(forged, right.number), 'drop', 'mallory')).toEqual({ fault: 'wrong' });
    const elsewhere = (await new PowChallenges('another-secret-0123456789abcdef').issue('drop', 'alice', POW))!;
    expect(await pow.check(await solvePow(elsewhere), 'drop', 'alice')).toEqual({ fault: 'wrong' });
    expect(await pow.check('not base64 json', 'drop', 'alice')).toEqual({ fault: 'malformed' });
    expect(
      await pow.check(Buffer.from(JSON.stringify({ ...c, algorithm: 'SHA-1', number: 1 })).toString('base64'), 'drop', 'alice'),
    ).toEqual({ fault: 'malformed' });
  });

  it('refuses an expired one, and one made for another campaign or another user', async () => {
    const old = await issued('drop', 'alice', Date.now() - 61_000);
    expect(await pow.check(await solvePow(old), 'drop', 'alice')).toEqual({ fault: 'expired' });
    expect(await pow.check(await solvePow(await issued('other')), 'drop', 'alice')).toEqual({ fault: 'other-campaign' });
    expect(await pow.check(await solvePow(await issued('drop', 'bob')), 'drop', 'alice')).toEqual({ fault: 'other-user' });
  });
});

describe('the challenge setting, as the log says it', () => {
  it('is OFF for a campaign created without one, and the last CampaignChallengeSet holds', () => {
    expect(replay(logOf([created('c1')])).challenge).toEqual(CHALLENGE_OFF);
    expect(replay(logOf([created('c1', POW)])).challenge).toEqual(POW);
    const s = replay(
      logOf([created('c1'), campaignChallengeSet('c1', POW, 'a'), campaignChallengeSet('c1', { mode: 'POW', difficulty: 5000 }, 'b')]),
    );
    expect(s.challenge).toEqual({ mode: 'POW', difficulty: 5000 });
    expect(replay(logOf([created('c1', POW), campaignChallengeSet('c1', CHALLENGE_OFF, 'a')])).challenge).toEqual(CHALLENGE_OFF);
  });

  it('changes nothing for a campaign not in the log yet', () => {
    expect(evolveChallenge(null, campaignChallengeSet('c1', POW, 'a'))).toBeNull();
    expect(replay(logOf([campaignChallengeSet('c1', POW, 'a')])).challenge).toEqual(CHALLENGE_OFF);
  });

  it('takes a difficulty within bounds, POW without one at the default', () => {
    expect(challengeSetting('POW', 1000)).toEqual(POW);
    expect(challengeSetting('OFF', 1000)).toEqual(CHALLENGE_OFF);
    expect(challengeSetting('POW', null)).toEqual({ mode: 'POW', difficulty: 50_000 });
    expect(challengeSetting('POW', 99)).toHaveProperty('invalid');
    expect(challengeSetting('POW', 1_000_001)).toHaveProperty('invalid');
  });

  it("enter's challenge verdict: nothing asked while OFF; REQUIRED without a solution; FAILED for any fault", () => {
    expect(judgeSolution(CHALLENGE_OFF, null, null)).toBeNull();
    expect(judgeSolution(POW, null, null)).toBe('CHALLENGE_REQUIRED');
    expect(judgeSolution(POW, 'x', null)).toBeNull();
    for (const f of ['malformed', 'wrong', 'expired', 'other-campaign', 'other-user', 'reused'] as const)
      expect(judgeSolution(POW, 'x', f)).toBe('CHALLENGE_FAILED');
  });

  it('goes through the codec, and a mode the log does not know is not an event', () => {
    const m = toMessage(campaignChallengeSet('c1', POW, 'a'), 6);
    const d = decodeValue(Buffer.from(m.value as string), m.partition, 7n);
    expect(d.kind === 'event' && d.logged.event).toMatchObject({ type: 'CampaignChallengeSet', mode: 'POW', difficulty: 1000 });
    const c = toMessage(created('c1', POW), 6);
    const dc = decodeValue(Buffer.from(c.value as string), c.partition, 7n);
    expect(dc.kind === 'event' && dc.logged.event).toMatchObject({ type: 'CampaignCreated', challenge: POW });
    const bad = JSON.stringify({ ...campaignChallengeSet('c1', POW, 'a'), mode: 'CAPTCHA' });
    expect(decodeValue(Buffer.from(bad), 0, 8n).kind).toBe('foreign');
  });

  it("the read model's plan: a created campaign's setting, then the batch's last change", () => {
    const first = planBatch(logOf([created('c1', POW), created('c2')]), { campaigns: new Map(), placed: new Map() });
    expect(first.campaigns.map((c) => [c.id, c.challengeMode, c.challengeDifficulty])).toEqual([
      ['c1', 'POW', 1000],
      ['c2', 'OFF', null],
    ]);
    const known = {
      campaigns: new Map([['c1', { terms: { stock: 10, opensAt: T0, closesAt: T0 + 3_600_000, closedAt: null }, entrants: 0 }]]),
      placed: new Map(),
    };
    const later = planBatch(
      logOf([
        campaignChallengeSet('c1', CHALLENGE_OFF, 'a'),
        campaignChallengeSet('c1', { mode: 'POW', difficulty: 7000 }, 'b'),
        campaignChallengeSet('gone', POW, 'c'),
      ]),
      known,
    );
    expect(later.changes.get('c1')?.challenge).toEqual({ mode: 'POW', difficulty: 7000 });
    expect(later.changes.has('gone')).toBe(false);
  });

  it("Redis's meta fields read back as the setting", () => {
    expect(challengeOf(null, null)).toEqual(CHALLENGE_OFF);
    expect(challengeOf('OFF', '')).toEqual(CHALLENGE_OFF);
    expect(challengeOf('POW', '1000')).toEqual(POW);
  });
});
