import { Redis } from 'ioredis';
import { Keys } from '../../projections/redis-ordering/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/**
 * Redis loses its last writes, as a failover of an asynchronously replicated primary does: mid-run
 * the campaign's keys are put back as they were a wave earlier (DUMP, then RESTORE … REPLACE), so
 * the second wave's places, winners and gifticons vanish and the campaign's step count goes back.
 * The single writer must find it and repair the campaign from the log; meanwhile every answer is
 * UNAVAILABLE or what the log decided, never a missing entry or a wrong status.
 */
const C = 'lost';
const STOCK = 200;
const FIRST = 120;
const SECOND = 120;
const THIRD = 60;
const USERS = FIRST + SECOND + THIRD;

const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { ticket position status } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { ticket position status gifticon { code } } }`;

type Seen =
  | { kind: 'UNAVAILABLE' }
  | { kind: 'none' }
  | { kind: 'entry'; ticket: string; position: number | null; status: string; code?: string | null };

let iso: Isolated;
let app: AppProcess;
const tokens: string[] = [];
const seen = new Map<number, Seen[]>();

const note = (user: number, s: Seen): void => void seen.set(user, [...(seen.get(user) ?? []), s]);

async function enter(user: number): Promise<void> {
  const r = await gql(app.port, tokens[user]!, ENTER, { c: C });
  if (r.errors) {
    expect(
      r.errors.map((e) => e.extensions?.code),
      JSON.stringify(r.errors),
    ).toEqual(['UNAVAILABLE']);
    return note(user, { kind: 'UNAVAILABLE' });
  }
  // sold out: a newcomer after the stock is gone, never one already in line (checked against the log below)
  if (r.data!.enter.rejection) return note(user, { kind: 'none' });
  note(user, { kind: 'entry', ...r.data!.enter.entry });
}

async function read(user: number): Promise<void> {
  const r = await gql(app.port, tokens[user]!, MY, { c: C });
  if (r.errors) {
    expect(
      r.errors.map((e) => e.extensions?.code),
      JSON.stringify(r.errors),
    ).toEqual(['UNAVAILABLE']);
    return note(user, { kind: 'UNAVAILABLE' });
  }
  const e = r.data!.myEntry;
  note(
    user,
    e ? { kind: 'entry', ticket: e.ticket, position: e.position, status: e.status, code: e.gifticon?.code ?? null } : { kind: 'none' },
  );
}

beforeAll(async () => {
  iso = await isolated('lost_writes', { ENTER_WAIT_MS: '1000', EVENT_PARTITIONS: '1' });
  app = await spawnApp(iso, 'api,writer,projector');
  const admin = await token('boss', 'admin');
  const created = await gql(app.port, admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
    i: { id: C, title: 'Lost', reward: 'Cake', stock: STOCK, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
  });
  expect(created.errors).toBeUndefined();
  for (let i = 0; i < USERS; i++) tokens.push(await token(`w${i}`));
}, 120_000);
afterAll(async () => {
  await app?.kill('SIGTERM');
  await iso?.cleanup();
});

describe('Redis losing its last writes to a campaign (a failover)', () => {
  it('is found by the writer and repaired from the log; no caller reads a missing entry or a wrong status meanwhile', async () => {
    const redis = new Redis(iso.config.REDIS_URL);
    try {
      await pool(
        Array.from({ length: FIRST }, (_, i) => i),
        16,
        enter,
      );
      // what Redis holds now, as a replica that lags by the second wave would
      await waitUntil(
        async () => (await auditFromLog(iso.config, C)).gifticons,
        (n) => n === FIRST,
        { what: 'the first wave decided' },
      );
      const layout = new Keys(iso.config.REDIS_PREFIX);
      const all = await redis.keys(layout.pattern(C));
      const keys = [layout.meta(C), layout.line(C), layout.won(C), layout.gifts(C)].filter((k) => all.includes(k));
      const old = await Promise.all(keys.map(async (k) => [k, await redis.dumpBuffer(k)] as const));
      expect(old.length).toBe(4);

      await pool(
        Array.from({ length: SECOND }, (_, i) => FIRST + i),
        16,
        enter,
      );
      await waitUntil(
        async () => (await auditFromLog(iso.config, C)).gifticons,
        (n) => n === STOCK,
        { what: 'the second wave decided' },
      );
      await pool(
        Array.from({ length: FIRST + SECOND }, (_, i) => i),
        32,
        read,
      );
      seen.clear();

      // the lost tail: the second wave's places, winners and gifticons are gone, the step count went back
      const restore = redis.multi();
      for (const [k, v] of old) restore.restore(k, 0, v, 'REPLACE');
      await restore.exec();
      expect(await redis.zcard(new Keys(iso.config.REDIS_PREFIX).line(C))).toBe(FIRST);

      // readers of everyone, second clicks of the second wave and a third wave, all at once
      await Promise.all([
        pool(
          Array.from({ length: FIRST + SECOND }, (_, i) => i),
          16,
          read,
        ),
        pool(
          Array.from({ length: SECOND }, (_, i) => FIRST + i),
          8,
          enter,
        ),
        pool(
          Array.from({ length: THIRD }, (_, i) => FIRST + SECOND + i),
          8,
          enter,
        ),
      ]);
      await waitUntil(
        async () => app.output(),
        (o) => o.includes('Redis lost writes of these campaigns'),
        { what: 'the writer found the lost writes' },
      );
      // repaired: the line holds every entrant of the log again (newcomers are turned away once it holds the stock)
      await waitUntil(
        async () => [await redis.zcard(new Keys(iso.config.REDIS_PREFIX).line(C)), (await auditFromLog(iso.config, C)).entrants] as const,
        ([line, entrants]) => line === entrants && entrants >= STOCK,
        { what: 'the line rebuilt' },
      );
      await pool(
        Array.from({ length: USERS }, (_, i) => i),
        32,
        async (u) => {
          await waitUntil(
            async () => (await gql(app.port, tokens[u]!, MY, { c: C })).errors,
            (e) => e === undefined,
            { what: `myEntry of w${u} answered` },
          );
          await read(u);
        },
      );
    } finally {
      redis.disconnect();
    }

    const audit = await auditFromLog(iso.config, C);
    expect(audit.problems).toEqual([]);
    expect(audit.winners).toBe(STOCK);
    const codes = audit.codes;
    const wrong: string[] = [];
    let unavailable = 0;
    for (const [user, list] of seen) {
      const place = audit.state.places.get(`w${user}`);
      for (const s of list) {
        if (s.kind === 'UNAVAILABLE') unavailable++;
        else if (s.kind === 'none') {
          if (place) wrong.push(`w${user}: told nothing or SOLD_OUT, the log has them at ${place.position}`);
        } else if (!place || s.ticket !== place.ticket) wrong.push(`w${user}: told ${s.ticket}, the log has ${place?.ticket}`);
        else if (s.status !== 'QUEUED' && (s.position !== place.position || s.status !== (place.position <= STOCK ? 'WON' : 'LOST')))
          wrong.push(`w${user}: told ${s.status} at ${s.position}, the log: ${place.position}`);
        else if (s.code && s.code !== codes.get(`w${user}`))
          wrong.push(`w${user}: told code ${s.code}, the log has ${codes.get(`w${user}`)}`);
      }
      // once repaired, every user reads the log's decision, code included
      const last = list.at(-1)!;
      if (
        place &&
        (last.kind !== 'entry' || last.position !== place.position || (place.position <= STOCK && last.code !== codes.get(`w${user}`)))
      )
        wrong.push(`w${user}: reads ${JSON.stringify(last)} at the end, the log places them at ${place.position}`);
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    console.log(
      `lost writes: ${[...seen.values()].flat().length} answers after the loss, ${unavailable} UNAVAILABLE, ${audit.entrants} entrants`,
    );
  });
});
