import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, runToEnd, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/**
 * An INVENTORY campaign's edges (issue 29): codes loaded after the close, a CODE_KEYS that cannot
 * unwrap the campaign's data key, `codes:rotate` with the old key then taken out of the ring, and
 * `codes:shred`. Every process runs with the ring the step names, restarted between steps.
 */
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const LOAD = `mutation($c: ID!, $codes: [String!]!) { loadCodes(campaignId: $c, codes: $codes) { loaded duplicates total } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { entry { status position } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { status position gifticon { code status } } }`;
const CLOSE = `mutation($id: ID!) { closeCampaign(id: $id) { status } }`;
const CAMPAIGN = `query($c: ID!) { campaign(id: $c) { status winners codes { loaded issued short } } }`;
const GIFTICONS = `query($c: ID!) { gifticons(campaignId: $c, first: 10) { edges { node { userId code status } } } }`;

const ring = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;
const OLD = ring('old');
const NEW = ring('new');
/** a brand's code: unmistakable in a process's output */
const pin = (name: string) => `EDGE-PIN-${name}-4R2`;

let iso: Isolated;
let app: AppProcess;
let prisma: PrismaClient;
let admin: string;
let reader: string;

/** the one process of every role this file runs, started again under `keys` */
async function restart(keys: string) {
  await app?.kill('SIGTERM');
  app = await spawnApp(iso, 'api,writer,projector', { CODE_KEYS: keys });
}

const load = (c: string, codes: string[]) => gql(app.port, admin, LOAD, { c, codes });
const enter = async (c: string, user: string) => expect((await gql(app.port, await token(user), ENTER, { c })).errors).toBeUndefined();
const mine = async (c: string, user: string) => (await gql(app.port, await token(user), MY, { c })).data!.myEntry;
const gifticonOf = (c: string, user: string, want: unknown) =>
  waitUntil(
    async () => (await mine(c, user))?.gifticon,
    (g) => JSON.stringify(g) === JSON.stringify(want),
    { what: `${user}'s gifticon in ${c}: ${JSON.stringify(want)}`, timeoutMs: 45_000 },
  );
async function createInventory(id: string, stock: number) {
  const closesAt = new Date(Date.now() + 3_600_000).toISOString();
  const r = await gql(app.port, admin, CREATE, { i: { id, title: id, reward: 'Voucher', stock, closesAt, issuance: 'INVENTORY' } });
  expect(r.errors).toBeUndefined();
}
/** the log's audit of a campaign, its codes opened with `keys` */
const audit = (c: string, keys: string) => auditFromLog(loadConfig({ ...process.env, ...iso.env, CODE_KEYS: keys }), c);

beforeAll(async () => {
  iso = await isolated('inventory-keys');
  prisma = createPrisma(iso.config.DATABASE_URL, { poolSize: 1 });
  admin = await token('edge-admin', 'admin');
  reader = await token('edge-reader', ['admin', 'codes:read']);
  await restart(OLD);
}, 120_000);

afterAll(async () => {
  await app?.kill('SIGTERM');
  await prisma?.$disconnect();
  await iso?.cleanup();
});

describe('loadCodes after the close', () => {
  it('is taken while winners still wait for codes, refused with why once none waits; a chunk loaded before answers as it did', async () => {
    await createInventory('late', 3);
    expect((await load('late', [pin('L1')])).data!.loadCodes).toEqual({ loaded: 1, duplicates: 0, total: 1 });
    await enter('late', 'late-a');
    await enter('late', 'late-b');
    await gifticonOf('late', 'late-a', { code: pin('L1'), status: 'ISSUED' });
    await gifticonOf('late', 'late-b', { code: null, status: 'PENDING' });
    expect((await gql(app.port, admin, CLOSE, { id: 'late' })).data!.closeCampaign).toEqual({ status: 'CLOSED' });
    // late-b waits: a chunk is taken, more codes than wait included
    expect((await load('late', [pin('L2'), pin('L3')])).data!.loadCodes).toEqual({ loaded: 2, duplicates: 0, total: 3 });
    await gifticonOf('late', 'late-b', { code: pin('L2'), status: 'ISSUED' });
    // nobody waits now
    const refused = await load('late', [pin('L4')]);
    expect(refused.errors?.[0]).toMatchObject({
      message: expect.stringContaining('the campaign is closed and no winner waits for a code'),
      extensions: { code: 'BAD_USER_INPUT', field: 'campaignId' },
    });
    expect(JSON.stringify(refused.errors)).not.toContain(pin('L4'));
    // a load resumed after the close: its chunk answers as it did, and nothing is loaded twice
    expect((await load('late', [pin('L2'), pin('L3')])).data!.loadCodes).toEqual({ loaded: 2, duplicates: 0, total: 3 });
    const c = (await gql(app.port, admin, CAMPAIGN, { c: 'late' })).data!.campaign;
    expect(c).toEqual({ status: 'CLOSED', winners: 2, codes: { loaded: 3, issued: 2, short: 0 } });
    const a = await audit('late', OLD);
    expect(a.problems).toEqual([]);
    expect(a.log.filter((l) => l.event.type === 'CodesLoaded')).toHaveLength(2);
  });
});

describe("a CODE_KEYS that cannot unwrap the campaign's data key", () => {
  it('loadCodes answers a clear error naming why, loads nothing, names no code, and the process stays up', async () => {
    await createInventory('keys', 2);
    expect((await load('keys', [pin('K1')])).data!.loadCodes).toEqual({ loaded: 1, duplicates: 0, total: 1 });
    await enter('keys', 'keys-a');
    await gifticonOf('keys', 'keys-a', { code: pin('K1'), status: 'ISSUED' });
    for (const [keys, reason] of [
      [NEW, 'missing-kek'],
      [ring('old'), 'wrong-kek'],
    ] as const) {
      await restart(keys);
      const r = await load('keys', [pin('K2')]);
      expect(r.errors?.[0]).toMatchObject({
        message: `the campaign's data key cannot be had (${reason}): nothing was loaded`,
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      });
      // still up: it answers, and a code it cannot open reads null rather than failing the read
      expect((await gql(app.port, admin, CAMPAIGN, { c: 'keys' })).data!.campaign.codes).toEqual({ loaded: 1, issued: 1, short: 0 });
      expect(await mine('keys', 'keys-a')).toEqual({ status: 'WON', position: 1, gifticon: { code: null, status: 'ISSUED' } });
      expect(app.child.exitCode).toBeNull();
      expect(app.output()).not.toContain(pin('K2'));
    }
    expect((await audit('keys', OLD)).log.filter((l) => l.event.type === 'CodesLoaded')).toHaveLength(1);
    // the ring holding the key again: the same chunk loads, and the next winner holds it
    await restart(`${NEW},${OLD}`);
    expect((await load('keys', [pin('K2')])).data!.loadCodes).toEqual({ loaded: 1, duplicates: 0, total: 2 });
    await enter('keys', 'keys-b');
    await gifticonOf('keys', 'keys-b', { code: pin('K2'), status: 'ISSUED' });
  });
});

describe('codes:rotate, then codes:shred', () => {
  const cli = (args: string[], keys: string) => runToEnd('npx', ['tsx', 'src/cli/codeKeys.ts', ...args], { ...iso.env, CODE_KEYS: keys });
  const expected = new Map([
    ['late', { 'late-a': pin('L1'), 'late-b': pin('L2') }],
    ['keys', { 'keys-a': pin('K1'), 'keys-b': pin('K2') }],
  ]);

  it('rotated, every loaded code reads with the new key alone: the winners, an admin with codes:read, the log', async () => {
    const r = await cli(['rotate'], `${NEW},${OLD}`);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/re-wrapped now\s+│\s+2\s/);
    await restart(NEW);
    for (const [c, codes] of expected) {
      for (const [user, code] of Object.entries(codes)) await gifticonOf(c, user, { code, status: 'ISSUED' });
      const read = await gql(app.port, reader, GIFTICONS, { c });
      expect(
        new Map(read.data!.gifticons.edges.map(({ node }: { node: { userId: string; code: string } }) => [node.userId, node.code])),
      ).toEqual(new Map(Object.entries(codes)));
      const a = await audit(c, NEW);
      expect(a.problems).toEqual([]);
      expect(a).toMatchObject({ gifticons: 2, unopened: 0 });
    }
  });

  it("shredded, a campaign's codes read nowhere, within the key's hold, while the rest of it and the other campaign read", async () => {
    // the read model shows the close first: codes:shred erases closed campaigns only
    await waitUntil(
      () => prisma.campaign.findUnique({ where: { id: 'late' }, select: { closedAt: true } }),
      (c) => c?.closedAt != null,
      { what: "the read model showing the close of 'late'" },
    );
    const refused = await cli(['shred', '--campaign', 'keys'], NEW);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('not closed yet');
    const r = await cli(['shred', '--campaign', 'late'], NEW);
    expect(r.code, r.output).toBe(0);
    // the running process holds a key up to 30 s (src/infra/codeKeys/vault.ts): it stops opening within it
    await gifticonOf('late', 'late-a', { code: null, status: 'ISSUED' });
    expect(await mine('late', 'late-b')).toEqual({ status: 'WON', position: 2, gifticon: { code: null, status: 'ISSUED' } });
    const read = await gql(app.port, reader, GIFTICONS, { c: 'late' });
    expect(read.data!.gifticons.edges.map((e: { node: unknown }) => e.node)).toEqual(
      expect.arrayContaining([
        { userId: 'late-a', code: null, status: 'ISSUED' },
        { userId: 'late-b', code: null, status: 'ISSUED' },
      ]),
    );
    const c = (await gql(app.port, admin, CAMPAIGN, { c: 'late' })).data!.campaign;
    expect(c).toEqual({ status: 'CLOSED', winners: 2, codes: { loaded: 3, issued: 2, short: 0 } });
    // the log: the sealed codes are there, and open with no key of any ring
    for (const keys of [NEW, `${NEW},${OLD}`]) {
      const a = await audit('late', keys);
      expect(a.problems).toEqual([]);
      expect(a).toMatchObject({ winners: 2, gifticons: 2, unopened: 2 });
    }
    // the other campaign is untouched
    for (const [user, code] of Object.entries(expected.get('keys')!)) await gifticonOf('keys', user, { code, status: 'ISSUED' });
  });
});
