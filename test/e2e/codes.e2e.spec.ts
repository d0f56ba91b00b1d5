import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { storesAtRest } from '../support/atRest.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';

/**
 * Every code a secret at rest (I6), and who sees one: a drop through one process of every role,
 * then the raw log, every Postgres table and every Redis value searched for each issued code.
 */
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { entry { status } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { status position gifticon { code status issuedAt } } }`;
const GIFTICONS = `query($c: ID!) { gifticons(campaignId: $c, first: 1000) { totalCount edges { node { userId code status } } } }`;
const ENTRY = `query($c: ID!, $u: ID!) { entry(campaignId: $c, userId: $u) { gifticon { code } } }`;
const READS = `query { codeReads(first: 10) { totalCount edges { node { reader campaignId field codes readAt } } } }`;

const C = 'sealed';
const STOCK = 25;
const USERS = 40;

let iso: Isolated;
let app: AppProcess;
let prisma: PrismaClient;
let admin: string;
let reader: string;
let codes: Map<string, string>;
const user = (i: number) => `${C}-u${i}`;

beforeAll(async () => {
  iso = await isolated('codes');
  app = await spawnApp(iso, 'api,writer,projector');
  prisma = createPrisma(iso.config.DATABASE_URL, { poolSize: 2 });
  admin = await token('plain-admin', 'admin');
  reader = await token('code-reader', ['admin', 'codes:read']);
  const closesAt = new Date(Date.now() + 3_600_000).toISOString();
  const r = await gql(app.port, admin, CREATE, { i: { id: C, title: 'Sealed', reward: 'Voucher', stock: STOCK, closesAt } });
  expect(r.errors).toBeUndefined();
  await pool(
    Array.from({ length: USERS }, (_, i) => i),
    16,
    async (i) => {
      const e = await gql(app.port, await token(user(i)), ENTER, { c: C });
      expect(e.errors).toBeUndefined();
    },
  );
  const audit = await waitUntil(
    () => auditFromLog(iso.config, C),
    (a) => a.gifticons >= STOCK,
    { what: 'every winner issued' },
  );
  expect(audit.problems).toEqual([]);
  codes = audit.codes;
  expect(codes.size).toBe(STOCK);
  await waitUntil(
    () => prisma.gifticon.count({ where: { campaignId: C } }),
    (n) => n >= STOCK,
    { what: 'the gifticons in Postgres' },
  );
}, 120_000);

afterAll(async () => {
  await app?.kill('SIGTERM');
  await prisma?.$disconnect();
  await iso?.cleanup();
});

describe('codes at rest', () => {
  it('no issued code is in plaintext in the raw log, any Postgres table or Redis', async () => {
    const stores = await storesAtRest(iso.config);
    // the search itself finds what is there: the stores hold the winners' user ids
    for (const text of Object.values(stores)) expect(text).toContain(user(0));
    for (const [where, text] of Object.entries(stores)) {
      for (const code of codes.values()) {
        expect(text.includes(code), `${where} holds a code in plaintext`).toBe(false);
        expect(text.includes(code.replaceAll('-', '')), `${where} holds a code in plaintext, without its dashes`).toBe(false);
      }
    }
  });
});

describe('who sees a code', () => {
  it('each winner sees their own code (myEntry), ISSUED', async () => {
    for (let i = 0; i < USERS; i++) {
      const r = await gql(app.port, await token(user(i)), MY, { c: C });
      const e = r.data!.myEntry;
      // turned away once sold out (no entry), or in line past the stock
      if (e === null || e.status !== 'WON') expect([e?.gifticon ?? null, codes.has(user(i))]).toEqual([null, false]);
      else expect(e.gifticon).toMatchObject({ code: codes.get(user(i)), status: 'ISSUED' });
    }
  });

  it('an admin without CODES_READ_ROLE reads code: null, and nothing is recorded', async () => {
    const before = (await gql(app.port, admin, READS)).data!.codeReads.totalCount;
    const r = await gql(app.port, admin, GIFTICONS, { c: C });
    expect(r.data!.gifticons.totalCount).toBe(STOCK);
    for (const { node } of r.data!.gifticons.edges) expect(node).toMatchObject({ code: null, status: 'ISSUED' });
    const winner = [...codes.keys()][0]!;
    expect((await gql(app.port, admin, ENTRY, { c: C, u: winner })).data!.entry.gifticon).toEqual({ code: null });
    expect((await gql(app.port, admin, READS)).data!.codeReads.totalCount).toBe(before);
  });

  it('an admin with it reads every code, and the read is recorded: who, when, which campaign; any admin lists it', async () => {
    const before = (await gql(app.port, admin, READS)).data!.codeReads.totalCount;
    const started = Date.now();
    const r = await gql(app.port, reader, GIFTICONS, { c: C });
    const seen = new Map(r.data!.gifticons.edges.map(({ node }: { node: { userId: string; code: string } }) => [node.userId, node.code]));
    expect(seen).toEqual(codes);
    const reads = (await gql(app.port, admin, READS)).data!.codeReads;
    expect(reads.totalCount).toBe(before + 1);
    expect(reads.edges[0].node).toMatchObject({ reader: 'code-reader', campaignId: C, field: 'gifticons', codes: STOCK });
    expect(Date.parse(reads.edges[0].node.readAt)).toBeGreaterThanOrEqual(started - 1000);
    // a user is no admin: the record is not theirs to list
    const denied = await gql(app.port, await token(user(0)), READS);
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('a PROVIDER campaign', () => {
  it('selects winners at the decision and leaves their gifticons PENDING, with no code', async () => {
    const closesAt = new Date(Date.now() + 3_600_000).toISOString();
    const missing = await gql(app.port, admin, CREATE, {
      i: { id: 'prov-x', title: 'P', reward: 'V', stock: 1, closesAt, issuance: 'PROVIDER' },
    });
    expect(missing.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.product' });
    const r = await gql(app.port, admin, CREATE, {
      i: { id: 'prov', title: 'P', reward: 'V', stock: 1, closesAt, issuance: 'PROVIDER', product: 'coffee-s' },
    });
    expect(r.errors).toBeUndefined();
    const alice = await token('prov-alice');
    await gql(app.port, alice, ENTER, { c: 'prov' });
    const e = await waitUntil(
      async () => (await gql(app.port, alice, MY, { c: 'prov' })).data!.myEntry,
      (v) => v?.gifticon !== null && v?.gifticon !== undefined,
      { what: "alice's PENDING gifticon" },
    );
    expect(e).toEqual({ status: 'WON', position: 1, gifticon: { code: null, status: 'PENDING', issuedAt: null } });
    const audit = await auditFromLog(iso.config, 'prov');
    expect(audit.problems).toEqual([]);
    expect(audit).toMatchObject({ winners: 1, gifticons: 0 });
  });
});
