import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PowChallenges, type PowChallenge } from '../../src/api/challenge.js';
import { powSolution, solvePow } from '../../src/cli/pow.js';
import { createRedis, EnterGate, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { loseRedis } from '../support/redis.js';
import { decidedEntry, logEnds, waitUntil, whenCaughtUp } from '../support/wait.js';

/**
 * Issue 34, over GraphQL against a real broker, Redis and Postgres: a campaign that asks for proof
 * of work refuses every solution that does not hold, each time with nothing appended to the log;
 * an admin switches it on in the middle of a drop and changes its difficulty. Difficulties stay
 * near 1,000 so each solve takes milliseconds.
 */
const SECRET = 'e2e-challenge-secret-0123456789ab';
let iso: Isolated;
let app: AppProcess;
let admin: string;

const ENTER = `mutation($c: ID!, $s: String) { enter(campaignId: $c, solution: $s) { rejection entry { ticket status position } } }`;
const CHALLENGE = `query($c: ID!) { challenge(campaignId: $c) { algorithm challenge salt signature maxnumber } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id challenge { mode difficulty } } }`;
const SET = `mutation($c: ID!, $ch: ChallengeInput!) { setChallenge(campaignId: $c, challenge: $ch) { id status challenge { mode difficulty } } }`;

const ends = async () => Object.fromEntries([...(await logEnds(iso.config))].map(([p, e]) => [p, String(e)]));

/**
 * The log's ends once nothing more is on its way: the writer has caught up (its decisions on the
 * entries so far are in the log, committed after `enter` answered), and the ends have not moved
 * for longer than a line head's second. A campaign's newest entrants that no head covers get one a
 * second after its last head, in a transaction of their own when no batch comes to carry it
 * (src/writer/lineHeads.ts): an end read sooner may still grow by that head and its marker.
 */
async function quietEnds() {
  const QUIET_MS = 1_500;
  let last = '';
  let since = 0;
  const quiet = await waitUntil(
    async () => {
      await whenCaughtUp(iso.config, iso.config.groups.writer, { oneShort: true });
      const now = JSON.stringify(await ends());
      if (now !== last) [last, since] = [now, Date.now()];
      return Date.now() - since > QUIET_MS ? now : null;
    },
    (v) => v !== null,
    { what: `the log quiet for ${QUIET_MS} ms`, everyMs: 100 },
  );
  return JSON.parse(quiet!) as Record<string, string>;
}

async function create(id: string, challenge?: { mode: string; difficulty?: number }) {
  const r = await gql(app.port, admin, CREATE, {
    i: {
      id,
      title: id,
      reward: 'Cake',
      stock: 50,
      closesAt: new Date(Date.now() + 3_600_000).toISOString(),
      ...(challenge ? { challenge } : {}),
    },
  });
  expect(r.errors).toBeUndefined();
  return r.data!.createCampaign;
}

async function challengeFor(user: string, campaignId: string): Promise<PowChallenge | null> {
  const r = await gql<{ challenge: PowChallenge | null }>(app.port, await token(user), CHALLENGE, { c: campaignId });
  expect(r.errors).toBeUndefined();
  return r.data!.challenge;
}

const enter = async (user: string, campaignId: string, solution?: string) => {
  const r = await gql(app.port, await token(user), ENTER, { c: campaignId, s: solution ?? null });
  expect(r.errors).toBeUndefined();
  return r.data!.enter as { rejection: string | null; entry: { ticket: string } | null };
};

/** enter as `user` with `solution`, refused with `rejection`, and the log's end the same before and after */
async function refusedAddingNothing(campaignId: string, user: string, solution: string | undefined, rejection: string) {
  const before = await quietEnds();
  expect(await enter(user, campaignId, solution)).toEqual({ rejection, entry: null });
  // an accepted entry is durable (acks=all) before its answer: had this call written, the end would show it
  expect(await ends()).toEqual(before);
  expect((await gql(app.port, await token(user), `query($c: ID!) { myEntry(campaignId: $c) { ticket } }`, { c: campaignId })).data).toEqual(
    { myEntry: null },
  );
}

/** enter as `user` with `solution`, accepted: the log grows and the user has an entry */
async function accepted(campaignId: string, user: string, solution?: string) {
  const before = await logEnds(iso.config);
  const r = await enter(user, campaignId, solution);
  expect(r.rejection).toBeNull();
  expect([...(await logEnds(iso.config))].some(([p, e]) => e > (before.get(p) ?? 0n))).toBe(true);
  expect(await decidedEntry(app.port, await token(user), campaignId)).toMatchObject({ status: 'WON' });
  return r.entry!;
}

beforeAll(async () => {
  iso = await isolated('challenge', { CHALLENGE_SECRET: SECRET });
  app = await spawnApp(iso, 'api,writer,projector');
  admin = await token('boss', 'admin');
});
afterAll(async () => {
  await app?.kill();
  await iso?.cleanup();
});

describe('a POW campaign refuses every solution that does not hold, appending nothing', () => {
  it('missing, wrong, expired, reused, another campaign’s and another user’s: each refused; a good one enters', async () => {
    expect(await create('pow', { mode: 'POW', difficulty: 1000 })).toEqual({ id: 'pow', challenge: { mode: 'POW', difficulty: 1000 } });
    await create('pow-other', { mode: 'POW', difficulty: 1000 });

    await refusedAddingNothing('pow', 'missing', undefined, 'CHALLENGE_REQUIRED');

    const c = (await challengeFor('wrong', 'pow'))!;
    expect(c).toMatchObject({ algorithm: 'SHA-256', maxnumber: 1000 });
    const right = JSON.parse(Buffer.from(await solvePow(c), 'base64').toString()) as { number: number };
    await refusedAddingNothing('pow', 'wrong', powSolution(c, (right.number + 1) % 1000), 'CHALLENGE_FAILED');
    await refusedAddingNothing('pow', 'wrong', 'bm90IGEgcGF5bG9hZA==', 'CHALLENGE_FAILED');

    // signed with the server's secret for this campaign and user, a minute and more ago
    const old = (await new PowChallenges(SECRET).issue('pow', 'late', { mode: 'POW', difficulty: 1000 }, Date.now() - 61_000))!;
    await refusedAddingNothing('pow', 'late', await solvePow(old), 'CHALLENGE_FAILED');

    // spent already, as another API process spends it (one SET NX every process shares)
    const spent = (await challengeFor('again', 'pow'))!;
    const redis = createRedis(iso.config);
    try {
      expect(await new EnterGate(new RedisOrdering(redis, iso.config.REDIS_PREFIX)).spendSolution('pow', spent.challenge, 60_000)).toBe(
        true,
      );
    } finally {
      redis.disconnect();
    }
    await refusedAddingNothing('pow', 'again', await solvePow(spent), 'CHALLENGE_FAILED');

    await refusedAddingNothing('pow', 'elsewhere', await solvePow((await challengeFor('elsewhere', 'pow-other'))!), 'CHALLENGE_FAILED');
    await refusedAddingNothing('pow', 'thief', await solvePow((await challengeFor('victim', 'pow'))!), 'CHALLENGE_FAILED');

    // the control: each of these users, with a good solution of their own, enters
    for (const user of ['missing', 'wrong', 'late', 'again', 'elsewhere', 'thief'])
      await accepted('pow', user, await solvePow((await challengeFor(user, 'pow'))!));
  });

  it('a solution enters once: used again by its user, the entry comes back and nothing is appended', async () => {
    const solution = await solvePow((await challengeFor('once', 'pow'))!);
    const entry = await accepted('pow', 'once', solution);
    const before = await quietEnds();
    expect((await enter('once', 'pow', solution)).entry?.ticket).toBe(entry.ticket);
    // a user already in line needs no solution at all
    expect((await enter('once', 'pow')).entry?.ticket).toBe(entry.ticket);
    expect(await ends()).toEqual(before);
  });
});

describe('an admin sets the challenge while the campaign runs', () => {
  it('switches OFF to POW mid-drop: those in line keep their entry, newcomers need a solution; OFF again lets them in', async () => {
    expect(await create('drop')).toEqual({ id: 'drop', challenge: { mode: 'OFF', difficulty: null } });
    expect(await challengeFor('early', 'drop')).toBeNull();
    const early = await accepted('drop', 'early');

    const set = await gql(app.port, admin, SET, { c: 'drop', ch: { mode: 'POW', difficulty: 1000 } });
    expect(set.errors).toBeUndefined();
    expect(set.data!.setChallenge).toEqual({ id: 'drop', status: 'OPEN', challenge: { mode: 'POW', difficulty: 1000 } });

    await refusedAddingNothing('drop', 'late', undefined, 'CHALLENGE_REQUIRED');
    const before = await quietEnds();
    expect((await enter('early', 'drop')).entry?.ticket).toBe(early.ticket);
    expect(await ends()).toEqual(before);
    await accepted('drop', 'late', await solvePow((await challengeFor('late', 'drop'))!));

    expect((await gql(app.port, admin, SET, { c: 'drop', ch: { mode: 'OFF' } })).data!.setChallenge.challenge).toEqual({
      mode: 'OFF',
      difficulty: null,
    });
    expect(await challengeFor('later', 'drop')).toBeNull();
    await accepted('drop', 'later');
  });

  it('changes the difficulty: new challenges carry it, and the read model follows the log', async () => {
    await create('tune', { mode: 'POW', difficulty: 1000 });
    expect((await challengeFor('u1', 'tune'))!.maxnumber).toBe(1000);
    expect((await gql(app.port, admin, SET, { c: 'tune', ch: { mode: 'POW', difficulty: 3000 } })).data!.setChallenge.challenge).toEqual({
      mode: 'POW',
      difficulty: 3000,
    });
    const harder = (await challengeFor('u1', 'tune'))!;
    expect(harder.maxnumber).toBe(3000);
    await accepted('tune', 'u1', await solvePow(harder));

    // the campaigns list is the read model's (Postgres), projected from the same events
    const tuneInReadModel = async () => {
      const r = await gql<{ campaigns: { edges: { node: { id: string; challenge: unknown } }[] } }>(
        app.port,
        admin,
        `{ campaigns(first: 20) { edges { node { id challenge { mode difficulty } } } } }`,
      );
      return r.data?.campaigns.edges.find((e) => e.node.id === 'tune')?.node.challenge;
    };
    await waitUntil(tuneInReadModel, (c) => JSON.stringify(c) === JSON.stringify({ mode: 'POW', difficulty: 3000 }), {
      what: 'the read model shows tune at 3000',
    });
  });

  it('refuses a difficulty out of bounds with the field named, and anyone but an admin', async () => {
    const low = await gql(app.port, admin, SET, { c: 'tune', ch: { mode: 'POW', difficulty: 50 } });
    expect(low.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'challenge.difficulty' });
    const created = await gql(app.port, admin, CREATE, {
      i: {
        id: 'bad',
        title: 'Bad',
        reward: 'Cake',
        stock: 5,
        closesAt: new Date(Date.now() + 3_600_000).toISOString(),
        challenge: { mode: 'POW', difficulty: 2_000_000 },
      },
    });
    expect(created.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.challenge.difficulty' });
    const user = await gql(app.port, await token('u1'), SET, { c: 'tune', ch: { mode: 'OFF' } });
    expect(user.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await gql(app.port, admin, SET, { c: 'nope', ch: { mode: 'OFF' } })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    // none of it changed the setting
    expect((await challengeFor('u2', 'tune'))!.maxnumber).toBe(3000);
  });

  it('lives in the log: after Redis loses every key and is replayed, each campaign asks for what it did', async () => {
    const worker = await spawnApp(iso, 'worker');
    try {
      expect(await loseRedis(iso.config)).toBeGreaterThan(0);
      const r = await gql(app.port, admin, `mutation { replay(target: REDIS) { id } }`);
      expect(r.errors).toBeUndefined();
      const job = await waitUntil(
        async () => (await gql(app.port, admin, `query($id: ID!) { job(id: $id) { status error } }`, { id: r.data!.replay.id })).data!.job,
        (j) => j.status === 'SUCCEEDED' || j.status === 'FAILED',
        { what: 'the replay finished', timeoutMs: 120_000 },
      );
      expect(job).toEqual({ status: 'SUCCEEDED', error: null });
      const maxnumber = async (c: string) => {
        const got = await gql<{ challenge: PowChallenge | null }>(app.port, await token('after'), CHALLENGE, { c });
        return got.errors ? 'unavailable' : (got.data!.challenge?.maxnumber ?? null);
      };
      await waitUntil(
        () => maxnumber('tune'),
        (m) => m === 3000,
        { what: 'tune at 3000 again' },
      );
      expect(await maxnumber('pow')).toBe(1000);
      expect(await maxnumber('drop')).toBeNull();
    } finally {
      await worker.kill();
    }
  });
});
