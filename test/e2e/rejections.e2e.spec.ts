import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logged } from '../../src/domain/events.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { decidedEntry, logEnds, waitUntil, whenCaughtUp } from '../support/wait.js';

/**
 * CONTRACT.md, enter 2: "A rejected call adds nothing to the log", held to the log's end offsets
 * (every partition), for each kind of rejection; and a campaign's status following the clock over
 * the API. No worker runs, so nothing but the calls of this file writes to its topic.
 */
let iso: Isolated;
let app: AppProcess;
let admin: string;
let kafka: ReturnType<typeof createKafka>;

const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { status position } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id status opensAt closesAt } }`;
const STATUS = `query($id: ID!) { campaign(id: $id) { status entrants winners } }`;

const ends = async () => Object.fromEntries([...(await logEnds(iso.config))].map(([p, e]) => [p, String(e)]));

/** enter as `user`, expecting `rejection`, and the log's end the same before and after */
async function rejectedAddingNothing(campaignId: string, user: string, rejection: string) {
  const before = await ends();
  const r = await gql(app.port, await token(user), ENTER, { c: campaignId });
  expect(r.errors).toBeUndefined();
  expect(r.data!.enter).toEqual({ rejection, entry: null });
  // an accepted entry is durable (acks=all) before its answer: had this call written, the end would show it
  expect(await ends()).toEqual(before);
  expect((await gql(app.port, await token(user), `query($c: ID!) { myEntry(campaignId: $c) { ticket } }`, { c: campaignId })).data).toEqual(
    { myEntry: null },
  );
}

const statusOf = async (id: string) => (await gql<{ campaign: { status: string } }>(app.port, admin, STATUS, { id })).data!.campaign.status;

beforeAll(async () => {
  iso = await isolated('rejections');
  app = await spawnApp(iso, 'api,writer');
  admin = await token('boss', 'admin');
  kafka = createKafka(iso.config, 'rejections-test');
});
afterAll(async () => {
  await app?.kill();
  await iso?.cleanup();
});

describe('a rejected enter adds nothing to the log', () => {
  it('NOT_OPEN before opensAt, then OPEN with the clock, then CLOSED by time at closesAt: SCHEDULED → OPEN → CLOSED', async () => {
    // room for a slow box: the first call must be answered well before opensAt
    const opensAt = Date.now() + 8_000;
    const closesAt = opensAt + 4_000;
    const created = await gql(app.port, admin, CREATE, {
      i: {
        id: 'clock',
        title: 'Clock',
        reward: 'Cake',
        stock: 5,
        opensAt: new Date(opensAt).toISOString(),
        closesAt: new Date(closesAt).toISOString(),
      },
    });
    expect(created.errors).toBeUndefined();
    expect(created.data!.createCampaign).toMatchObject({ id: 'clock', status: 'SCHEDULED' });
    await rejectedAddingNothing('clock', 'early-bird', 'NOT_OPEN');
    expect(Date.now(), 'the NOT_OPEN check ran before opensAt').toBeLessThan(opensAt);
    expect(await statusOf('clock')).toBe('SCHEDULED');

    await waitUntil(
      () => statusOf('clock'),
      (s) => s !== 'SCHEDULED',
      { what: 'clock no longer SCHEDULED', timeoutMs: 30_000, everyMs: 50 },
    );
    expect(Date.now()).toBeGreaterThanOrEqual(opensAt);
    expect(await statusOf('clock')).toBe('OPEN');
    const opener = await token('on-time');
    const before = await logEnds(iso.config);
    const entered = await gql(app.port, opener, ENTER, { c: 'clock' });
    expect(entered.data!.enter.rejection).toBeNull();
    expect(await decidedEntry(app.port, opener, 'clock')).toMatchObject({ status: 'WON', position: 1 });
    // the control: an accepted entry does move the end
    const after = await logEnds(iso.config);
    expect([...after].some(([p, e]) => e > (before.get(p) ?? 0n))).toBe(true);

    await waitUntil(
      () => statusOf('clock'),
      (s) => s === 'CLOSED',
      { what: 'clock CLOSED at closesAt', timeoutMs: 30_000, everyMs: 50 },
    );
    expect(Date.now()).toBeGreaterThanOrEqual(closesAt);
    await rejectedAddingNothing('clock', 'too-late', 'CLOSED');
    expect(await gql(app.port, admin, STATUS, { id: 'clock' })).toMatchObject({
      data: { campaign: { status: 'CLOSED', entrants: 1, winners: 1 } },
    });
  });

  it('CLOSED after closeCampaign', async () => {
    expect(
      (
        await gql(app.port, admin, CREATE, {
          i: { id: 'shut', title: 'Shut', reward: 'Cake', stock: 5, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
        })
      ).errors,
    ).toBeUndefined();
    expect(await statusOf('shut')).toBe('OPEN');
    const closed = await gql(app.port, admin, `mutation { closeCampaign(id: "shut") { status } }`);
    expect(closed.data).toEqual({ closeCampaign: { status: 'CLOSED' } });
    // the writer answers the close with the line's final head, in a transaction of its own that may
    // commit after the mutation was answered: wait for it, so that it is not taken for the rejected
    // call's doing
    await waitUntil(
      async () => {
        const log: Logged[] = [];
        await readLog(kafka, iso.config.topics.events, (batch) => void log.push(...batch));
        return log.some((l) => l.event.type === 'LineHeadSigned' && l.event.campaignId === 'shut' && l.event.final);
      },
      (found) => found,
      { what: "shut's final head on the log" },
    );
    await rejectedAddingNothing('shut', 'after-close', 'CLOSED');
    // and closing again adds nothing either
    const before = await ends();
    expect((await gql(app.port, admin, `mutation { closeCampaign(id: "shut") { status } }`)).data).toEqual({
      closeCampaign: { status: 'CLOSED' },
    });
    expect(await ends()).toEqual(before);
  });

  it('SOLD_OUT once every unit is taken', async () => {
    expect(
      (
        await gql(app.port, admin, CREATE, {
          i: { id: 'one', title: 'One', reward: 'Cake', stock: 1, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
        })
      ).errors,
    ).toBeUndefined();
    const first = await token('first');
    expect((await gql(app.port, first, ENTER, { c: 'one' })).data!.enter.rejection).toBeNull();
    expect(await decidedEntry(app.port, first, 'one')).toMatchObject({ status: 'WON', position: 1 });
    await waitUntil(
      () => statusOf('one'),
      (s) => s === 'SOLD_OUT',
      { what: 'one SOLD_OUT' },
    );
    // the writer has read everything, its sold-out transaction included (one short: its commit marker)
    await whenCaughtUp(iso.config, iso.config.groups.writer, { oneShort: true });
    await rejectedAddingNothing('one', 'second', 'SOLD_OUT');
    await rejectedAddingNothing('one', 'third', 'SOLD_OUT');
  });
});
