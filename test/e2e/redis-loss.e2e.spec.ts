import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';
import { loseRedis } from '../support/redis.js';

/**
 * Traffic through a Redis loss and a replay: a crowd keeps calling `enter` while this suite's Redis
 * keys vanish at once and replay(ALL) rebuilds them. Every answer is UNAVAILABLE, SOLD_OUT or an
 * entry the log confirms; afterwards every user's myEntry is what the log decided, codes included.
 */
const C = 'loss';
const STOCK = 500;
const USERS = 900;
const FIRST_WAVE = 250;

const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { ticket position status } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { ticket position status gifticon { code } } }`;
const JOB = `query($id: ID!) { job(id: $id) { status progress error } }`;

type Answer = { kind: 'entry'; ticket: string; position: number | null; status: string } | { kind: 'SOLD_OUT' } | { kind: 'UNAVAILABLE' };

let iso: Isolated;
let app: AppProcess;
let worker: AppProcess;
let admin: string;
const tokens: string[] = [];
const answers = new Map<number, Answer[]>();

async function enter(user: number): Promise<void> {
  const r = await gql(app.port, tokens[user]!, ENTER, { c: C });
  let a: Answer;
  if (r.errors) {
    // anything but a retryable refusal is a wrong answer
    expect(
      r.errors.map((e) => e.extensions?.code),
      JSON.stringify(r.errors),
    ).toEqual(['UNAVAILABLE']);
    a = { kind: 'UNAVAILABLE' };
  } else if (r.data!.enter.rejection) {
    expect(r.data!.enter.rejection).toBe('SOLD_OUT');
    a = { kind: 'SOLD_OUT' };
  } else a = { kind: 'entry', ...r.data!.enter.entry };
  answers.set(user, [...(answers.get(user) ?? []), a]);
}

beforeAll(async () => {
  iso = await isolated('redis_loss', { ENTER_WAIT_MS: '1000' });
  [app, worker] = await Promise.all([spawnApp(iso, 'api,writer,projector'), spawnApp(iso, 'worker')]);
  admin = await token('boss', 'admin');
  const created = await gql(app.port, admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
    i: { id: C, title: 'Loss', reward: 'Cake', stock: STOCK, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
  });
  expect(created.errors).toBeUndefined();
  for (let i = 0; i < USERS; i++) tokens.push(await token(`l${i}`));
}, 120_000);
afterAll(async () => {
  await Promise.all([app, worker].filter(Boolean).map((p) => p.kill('SIGTERM')));
  await iso?.cleanup();
});

describe('a crowd calling enter through a Redis loss and replay(ALL)', () => {
  it('is only ever answered UNAVAILABLE, SOLD_OUT or an entry the log confirms; afterwards myEntry is the log', async () => {
    await pool(
      Array.from({ length: FIRST_WAVE }, (_, i) => i),
      32,
      enter,
    );

    // the crowd keeps coming: new users, and first-wave users clicking again, until the replay is done
    let replayDone = false;
    let next = FIRST_WAVE;
    let calls = 0;
    const crowd = pool(
      Array.from({ length: 16 }, (_, i) => i),
      16,
      async (lane) => {
        while (!replayDone || next < USERS) {
          const user = next < USERS ? next++ : (lane * 37 + calls) % USERS;
          await enter(user);
          if (++calls > 20 * USERS) throw new Error('the replay never finished');
        }
      },
    );
    await waitUntil(
      async () => calls,
      (n) => n >= 100,
      { what: '100 calls into the second wave' },
    );
    expect(await loseRedis(iso.config)).toBeGreaterThan(0);
    const r = await gql(app.port, admin, `mutation { replay(target: ALL) { id } }`);
    expect(r.errors).toBeUndefined();
    const jobId = r.data!.replay.id as string;
    const job = await waitUntil(
      async () => (await gql(app.port, admin, JOB, { id: jobId })).data!.job,
      (j) => j.status === 'SUCCEEDED' || j.status === 'FAILED',
      { what: 'the replay finished', timeoutMs: 120_000 },
    );
    replayDone = true;
    await crowd;
    expect(job).toEqual({ status: 'SUCCEEDED', progress: 1, error: null });

    const audit = await waitUntil(
      () => auditFromLog(iso.config, C),
      (a) => a.winners === Math.min(a.stock, a.entrants) && a.gifticons === a.winners,
      { what: 'every entrant decided', timeoutMs: 60_000 },
    );
    expect(audit.problems).toEqual([]);
    expect(audit.winners).toBe(STOCK);
    const codes = audit.codes;

    // every entry answered is the log's: its ticket, and once decided its position and status
    const wrong: string[] = [];
    let unavailable = 0;
    for (const [user, list] of answers) {
      const place = audit.state.places.get(`l${user}`);
      for (const a of list) {
        if (a.kind === 'UNAVAILABLE') unavailable++;
        if (a.kind !== 'entry') continue;
        if (!place || place.ticket !== a.ticket) wrong.push(`l${user}: answered ${a.ticket}, the log has ${place?.ticket}`);
        else if (a.status !== 'QUEUED' && (a.position !== place.position || a.status !== (place.position <= STOCK ? 'WON' : 'LOST')))
          wrong.push(`l${user}: answered ${a.status} at ${a.position}, the log places them at ${place.position}`);
      }
      if (list.every((a) => a.kind === 'SOLD_OUT') && place) wrong.push(`l${user}: only ever SOLD_OUT, yet in the log`);
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(unavailable, 'the loss was felt by the crowd').toBeGreaterThan(0);

    // afterwards: every user reads what the log decided, status and code included
    const mismatched: string[] = [];
    await pool(
      Array.from({ length: USERS }, (_, i) => i),
      32,
      async (user) => {
        const got = await waitUntil(
          () => gql(app.port, tokens[user]!, MY, { c: C }),
          (x) => !x.errors,
          { what: `myEntry of l${user}` },
        );
        const place = audit.state.places.get(`l${user}`);
        const want = place
          ? {
              ticket: place.ticket,
              position: place.position,
              status: place.position <= STOCK ? 'WON' : 'LOST',
              gifticon: place.position <= STOCK ? { code: codes.get(`l${user}`) } : null,
            }
          : null;
        if (JSON.stringify(got.data!.myEntry) !== JSON.stringify(want))
          mismatched.push(`l${user}: ${JSON.stringify(got.data!.myEntry)} vs log ${JSON.stringify(want)}`);
      },
    );
    expect(mismatched.slice(0, 10)).toEqual([]);
    console.log(`Redis loss under traffic: ${calls + FIRST_WAVE} calls, ${unavailable} UNAVAILABLE, ${audit.entrants} entrants`);
  });
});
