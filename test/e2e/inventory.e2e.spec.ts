import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { storesAtRest } from '../support/atRest.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventually, gql, isolated, runToEnd, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';

/**
 * INVENTORY campaigns (issue 29): a brand's codes loaded in chunks (`loadCodes`), the k-th winner by
 * position holding the k-th code loaded (I6), winners short of codes waiting PENDING until a later
 * chunk, a replay reproducing the assignment, and no loaded code in plaintext at rest.
 */
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const LOAD = `mutation($c: ID!, $codes: [String!]!, $chunk: ID) { loadCodes(campaignId: $c, codes: $codes, chunkId: $chunk) { loaded duplicates total } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { entry { status position } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { status position gifticon { code status } } }`;
const REPLAY = `mutation($t: ReplayTarget!, $c: ID) { replay(target: $t, campaignId: $c) { id } }`;
const JOB = `query($id: ID!) { job(id: $id) { status error } }`;
/** the admin's counts, from the campaign and from the read model's list of campaigns */
const COUNTS = `query($c: ID!) { campaign(id: $c) { codes { loaded issued short } } campaigns { edges { node { id codes { loaded issued short } } } } }`;

const C = 'brand-drop';
const STOCK = 5;
const USERS = 7;
/** the brand's list: unmistakable strings, so a search of the stores cannot miss one */
const brand = (i: number) => `BRAND-PIN-${String(i).padStart(4, '0')}-Q7X`;

let iso: Isolated;
let app: AppProcess;
let worker: AppProcess;
let admin: string;
const user = (i: number) => `inv-u${i}`;

async function load(codes: string[], chunk?: string) {
  return gql(app.port, admin, LOAD, { c: C, codes, ...(chunk ? { chunk } : {}) });
}

async function myEntry(i: number) {
  return (await gql(app.port, await token(user(i)), MY, { c: C })).data!.myEntry as {
    status: string;
    position: number;
    gifticon: { code: string | null; status: string } | null;
  };
}

/** every winner's code by position, once `n` of them hold one */
async function codesByPosition(n: number) {
  return eventually(
    async () => {
      const out = new Map<number, string>();
      for (let i = 0; i < USERS; i++) {
        const e = await myEntry(i);
        if (e?.status === 'WON' && e.gifticon?.status === 'ISSUED') out.set(e.position, e.gifticon.code!);
      }
      return out;
    },
    (m) => m.size >= n,
    30_000,
  );
}

beforeAll(async () => {
  iso = await isolated('inventory');
  [app, worker] = await Promise.all([spawnApp(iso, 'api,writer,projector'), spawnApp(iso, 'worker')]);
  admin = await token('inv-admin', 'admin');
  const closesAt = new Date(Date.now() + 3_600_000).toISOString();
  const r = await gql(app.port, admin, CREATE, {
    i: { id: C, title: 'Brand', reward: 'Voucher', stock: STOCK, closesAt, issuance: 'INVENTORY' },
  });
  expect(r.errors).toBeUndefined();
  const m = await gql(app.port, admin, CREATE, { i: { id: 'minted', title: 'M', reward: 'V', stock: 1, closesAt } });
  expect(m.errors).toBeUndefined();
}, 120_000);

afterAll(async () => {
  await Promise.all([app?.kill('SIGTERM'), worker?.kill('SIGTERM')]);
  await iso?.cleanup();
});

describe('loadCodes', () => {
  it('refuses what it must: no admin, an unknown campaign, a MINTED one, more than 1,000 codes, a bad code', async () => {
    const user0 = await gql(app.port, await token(user(0)), LOAD, { c: C, codes: [brand(1)] });
    expect(user0.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const unknown = await gql(app.port, admin, LOAD, { c: 'nope', codes: [brand(1)] });
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const minted = await gql(app.port, admin, LOAD, { c: 'minted', codes: [brand(1)] });
    expect(minted.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'campaignId' });
    const many = await load(Array.from({ length: 1001 }, (_, i) => brand(5000 + i)));
    expect(many.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'codes' });
    const blank = await load([brand(1), ' ']);
    expect(blank.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'codes.1' });
    // nothing of these was loaded
    const first = await load([brand(1), brand(2)]);
    expect(first.data!.loadCodes).toEqual({ loaded: 2, duplicates: 0, total: 2 });
  });

  it('a chunk loaded again (same codes, no id) counts once; a chunk id given twice counts once', async () => {
    expect((await load([brand(1), brand(2)])).data!.loadCodes).toEqual({ loaded: 2, duplicates: 0, total: 2 });
    // an interrupted load resumed: the chunk named by its id is not loaded twice
    expect((await load([brand(3)], 'part-2')).data!.loadCodes).toEqual({ loaded: 1, duplicates: 0, total: 3 });
    expect((await load([brand(3)], 'part-2')).data!.loadCodes).toEqual({ loaded: 1, duplicates: 0, total: 3 });
  });

  it('codes given before, or twice in a chunk, are duplicates: the rest is loaded', async () => {
    const r = await load([brand(2), brand(4), brand(4)]);
    expect(r.data!.loadCodes).toEqual({ loaded: 1, duplicates: 2, total: 4 });
  });
});

describe('assignment', () => {
  it('the k-th winner holds the k-th code loaded; a winner short of codes waits PENDING, then gets the next chunk in order', async () => {
    for (let i = 0; i < USERS; i++) {
      const e = await gql(app.port, await token(user(i)), ENTER, { c: C });
      expect(e.errors).toBeUndefined();
    }
    const four = await codesByPosition(4);
    expect([...four].sort(([a], [b]) => a - b)).toEqual([
      [1, brand(1)],
      [2, brand(2)],
      [3, brand(3)],
      [4, brand(4)],
    ]);
    const fifth = await eventually(
      async () => {
        for (let i = 0; i < USERS; i++) {
          const e = await myEntry(i);
          if (e?.position === 5) return e;
        }
        return null;
      },
      (e) => e !== null && e.gifticon !== null,
      30_000,
    );
    expect(fifth).toMatchObject({ status: 'WON', gifticon: { code: null, status: 'PENDING' } });
    // the admin sees the shortage; a user does not
    const SHORT = `query($c: ID!) { campaign(id: $c) { winners codes { loaded issued short } } }`;
    const counts = await eventually(
      async () => (await gql(app.port, admin, SHORT, { c: C })).data!.campaign,
      (c) => c.codes?.issued === 4,
      30_000,
    );
    expect(counts).toEqual({ winners: STOCK, codes: { loaded: 4, issued: 4, short: 1 } });
    expect((await gql(app.port, await token(user(0)), SHORT, { c: C })).data!.campaign.codes).toBeNull();
    // brand(1) again is a duplicate, brand(5) the 5th code: position 5's
    expect((await load([brand(1), brand(5), brand(6)])).data!.loadCodes).toEqual({ loaded: 2, duplicates: 1, total: 6 });
    const all = await codesByPosition(5);
    expect(all.get(5)).toBe(brand(5));
    const audit = await auditFromLog(iso.config, C);
    expect(audit.problems).toEqual([]);
    expect(audit).toMatchObject({ winners: STOCK, gifticons: STOCK });
  });

  it('a replay (ALL) reproduces the assignment, and the codes loaded, issued and short', async () => {
    const before = await codesByPosition(STOCK);
    const counts = async () => {
      const d = (await gql(app.port, admin, COUNTS, { c: C })).data!;
      const listed = d.campaigns.edges.find((e: { node: { id: string } }) => e.node.id === C)?.node.codes;
      return { campaign: d.campaign?.codes, listed };
    };
    const whole = { loaded: 6, issued: STOCK, short: 0 };
    expect(await counts()).toEqual({ campaign: whole, listed: whole });
    const r = await gql(app.port, admin, REPLAY, { t: 'ALL', c: C });
    expect(r.errors).toBeUndefined();
    const job = await eventually(
      async () => (await gql(app.port, admin, JOB, { id: r.data!.replay.id })).data!.job as { status: string; error: string | null },
      (j) => j.status === 'SUCCEEDED' || j.status === 'FAILED',
      90_000,
    );
    expect(job).toEqual({ status: 'SUCCEEDED', error: null });
    expect(await codesByPosition(STOCK)).toEqual(before);
    expect(await counts()).toEqual({ campaign: whole, listed: whole });
    // the codes the replay rebuilt are still there for the next chunk: a known code stays a duplicate
    expect((await load([brand(6), brand(7)])).data!.loadCodes).toEqual({ loaded: 1, duplicates: 1, total: 7 });
  });

  it("npm run codes:load: chunks, a summary naming the duplicates' lines, and a resumed load that loads nothing twice", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fc-codes-'));
    const cli = (file: string) =>
      runToEnd(
        'npx',
        ['tsx', 'src/cli/loadCodes.ts', '--campaign', C, '--file', file, '--chunk-size', '2', '--url', `http://127.0.0.1:${app.port}`],
        iso.env,
      );
    // a load interrupted after its first chunk (lines 2-3 of the full file)
    const part = path.join(dir, 'part.csv');
    await writeFile(part, `code\n${brand(8)},x\n${brand(9)}\n`);
    const first = await cli(part);
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain('2 loaded, 0 duplicates, 9 codes held now');
    const full = path.join(dir, 'codes.csv');
    await writeFile(full, `code\n${brand(8)},x\n${brand(9)}\n${brand(10)}\n${brand(8)}\n\n${brand(11)}\n`);
    const resumed = await cli(full);
    expect(resumed.code, resumed.output).toBe(0);
    // the first chunk answers as it did (2 loaded before), then 10 and 11 are new; line 5 repeats line 2
    expect(resumed.output).toContain('4 loaded, 1 duplicates, 11 codes held now');
    expect(resumed.output).toMatch(/duplicates .* on lines: 5\n/);
    for (let i = 8; i <= 11; i++) expect(resumed.output).not.toContain(brand(i));
    const again = await cli(full);
    expect(again.output).toContain('11 codes held now');
  }, 120_000);

  it('no loaded code is in plaintext in the raw log, any Postgres table or Redis', async () => {
    const stores = await storesAtRest(iso.config);
    for (const text of Object.values(stores)) expect(text).toContain(user(0));
    for (const [where, text] of Object.entries(stores))
      for (let i = 1; i <= 11; i++) expect(text.includes(brand(i)), `${where} holds ${i}-th code in plaintext`).toBe(false);
  });
});
