import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { fromHex, verifyConsistency } from '../../src/domain/fairness/merkle.js';
import { auditFromLog } from '../support/audit.js';
import { collect, liveSocket, type LiveSocket, type Stream } from '../support/live.js';
import { eventually, gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';

/**
 * Issue 31 end to end: a drop where every entrant gets a receipt, every receipt checked by
 * `npm run verify` against the final head the server publishes, then the projections replayed
 * (REDIS, ALL): the same signed heads, bit for bit, and no head signed anew.
 */
const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { position } } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { campaignId userId ticket position status
  receipt { leafIndex leaf nonce inclusionProof head { campaignId size root at keyId signature } } } }`;
const FAIRNESS = `query($c: ID!) { fairness(campaignId: $c) { campaignId stock winners
  heads { campaignId size root at keyId signature } finalHead { campaignId size root at keyId signature } leaves(first: 10000) } }`;
const REPLAY = `mutation($t: ReplayTarget!, $c: ID) { replay(target: $t, campaignId: $c) { id } }`;
const JOB = `query($id: ID!) { job(id: $id) { status error } }`;
const C = 'fair-drop';
const STOCK = 15;
const USERS = 40;

let iso: Isolated;
let app: AppProcess;
let worker: AppProcess;
let admin: string;
let dir: string;
let prisma: PrismaClient;
let socket: LiveSocket;
let pushed: Stream<{ position: number; receipt: { head: { size: number } } | null } | null>;
const tokens: string[] = [];

type Head = { size: number; root: string; at: string; signature: string };

async function fairness() {
  const r = await gql<{ fairness: { heads: Head[]; finalHead: Head | null; leaves: string[]; winners: number[] | null } }>(
    app.port,
    null,
    FAIRNESS,
    { c: C },
  );
  expect(r.errors).toBeUndefined();
  return r.data!.fairness;
}

/** the heads as the log holds them */
async function headsInLog() {
  const { log } = await auditFromLog(iso.config, C);
  return log.filter((l) => l.event.type === 'LineHeadSigned').map((l) => l.event);
}

async function replay(target: 'REDIS' | 'ALL') {
  const r = await gql<{ replay: { id: string } }>(app.port, admin, REPLAY, { t: target, c: C });
  expect(r.errors).toBeUndefined();
  const job = await eventually(
    async () => (await gql<{ job: { status: string; error: string | null } }>(app.port, admin, JOB, { id: r.data!.replay.id })).data!.job,
    (j) => j.status === 'SUCCEEDED' || j.status === 'FAILED',
    90_000,
  );
  expect(job).toEqual({ status: 'SUCCEEDED', error: null });
}

beforeAll(async () => {
  iso = await isolated('fairness');
  [app, worker] = await Promise.all([spawnApp(iso, 'api,writer,projector'), spawnApp(iso, 'worker')]);
  admin = await token('fair-admin', 'admin');
  prisma = createPrisma(iso.env.DATABASE_URL!);
  dir = await mkdtemp(path.join(tmpdir(), 'fc-receipts-'));
  const created = await gql(app.port, admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
    i: { id: C, title: 'Fair', reward: 'Chicken gifticon', stock: STOCK, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
  });
  expect(created.errors).toBeUndefined();
  for (let i = 0; i < USERS; i++) tokens.push(await token(`fair-u${i}`));
  // every user enters, some twice; those past the stock once it sold out are turned away
  await pool(
    [...tokens.keys(), ...tokens.keys()].filter((i, k) => k < USERS || i % 4 === 0),
    16,
    async (i) => {
      const r = await gql(app.port, tokens[i]!, ENTER, { c: C });
      expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    },
  );
  // a user watching their entry while the line is open and then closed
  socket = liveSocket(app.port, tokens[1]!);
  pushed = collect(socket, `subscription($c: ID!) { myEntry(campaignId: $c) { position receipt { head { size } } } }`, { c: C });
  await pushed.until((v) => v !== null && v.position !== null);
  const closed = await gql(app.port, admin, `mutation($c: ID!) { closeCampaign(id: $c) { status } }`, { c: C });
  expect(closed.errors).toBeUndefined();
});

afterAll(async () => {
  await socket?.dispose();
  await prisma?.$disconnect();
  await Promise.all([app, worker].filter(Boolean).map((p) => p.kill('SIGTERM')));
  await iso?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('receipts anyone can check', () => {
  it('gives every entrant a receipt under the final head, and the CLI verifies every one of them', async () => {
    const f = await eventually(
      fairness,
      (x) => x.finalHead !== null && x.winners !== null && x.winners.length === Math.min(STOCK, x.finalHead.size),
    );
    const entrants = f.finalHead!.size;
    expect(entrants).toBeGreaterThan(STOCK);
    expect(f.leaves).toHaveLength(entrants);
    expect(f.winners).toEqual(Array.from({ length: STOCK }, (_, i) => i));
    expect(f.leaves.join('\n')).not.toMatch(/fair-u/);

    const files: string[] = [];
    for (const [i, t] of tokens.entries()) {
      const mine = await eventually(
        () => gql(app.port, t, MY, { c: C }),
        (r) => r.data?.myEntry === null || r.data?.myEntry?.receipt?.head?.size === entrants,
      );
      if (!mine.data!.myEntry) continue;
      const file = path.join(dir, `u${i}.json`);
      await writeFile(file, JSON.stringify(mine));
      files.push(file);
    }
    expect(files).toHaveLength(entrants);
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'src/cli/verify.ts', '--url', `http://127.0.0.1:${app.port}`, '--receipt', ...files],
      {
        cwd: ROOT,
      },
    );
    expect(stdout).toContain(`${entrants} of ${entrants} receipts hold`);
  });

  it('pushes the receipt to a subscribed entrant once the final head covers them', async () => {
    const f = await eventually(fairness, (x) => x.finalHead !== null);
    const got = await pushed.until((v) => v?.receipt?.head.size === f.finalHead!.size, 20_000);
    expect(got.at(-1)!.position).toBeLessThanOrEqual(f.finalHead!.size);
  });

  it('the CLI names what fails for a receipt that was tampered with, and exits 1', async () => {
    const mine = await gql(app.port, tokens[3]!, MY, { c: C });
    const entry = mine.data!.myEntry;
    const file = path.join(dir, 'tampered.json');
    await writeFile(file, JSON.stringify({ ...entry, position: entry.position + 1 }));
    const failed = await run(
      process.execPath,
      ['--import', 'tsx', 'src/cli/verify.ts', '--url', `http://127.0.0.1:${app.port}`, '--receipt', file],
      {
        cwd: ROOT,
      },
    ).then(
      () => null,
      (err: { code: number; stdout: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stdout).toMatch(/✗ leaf/);
  });

  it('proves every published head a prefix of the final one over GraphQL, with no token, and names a bad argument', async () => {
    const f = await fairness();
    const last = f.finalHead!;
    const PROOF = `query($c: ID!, $f: Int!, $t: Int!) { consistencyProof(campaignId: $c, from: $f, to: $t) }`;
    for (const h of f.heads) {
      const r = await gql<{ consistencyProof: string[] }>(app.port, null, PROOF, { c: C, f: h.size, t: last.size });
      expect(r.errors).toBeUndefined();
      const proof = r.data!.consistencyProof.map((x) => fromHex(x)!);
      expect(verifyConsistency(h.size, last.size, proof, fromHex(h.root)!, fromHex(last.root)!), `head of size ${h.size}`).toBe(true);
    }
    const backwards = await gql(app.port, null, PROOF, { c: C, f: 3, t: 2 });
    expect(backwards.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'from' });
    const beyond = await gql(app.port, null, PROOF, { c: C, f: 1, t: last.size + 1 });
    expect(beyond.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' });
    const none = await gql(app.port, null, PROOF, { c: 'no-such-drop', f: 0, t: 0 });
    expect(none.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('serves the proofs as cacheable JSON with no token, and the keys at the well-known address', async () => {
    const res = await fetch(`http://127.0.0.1:${app.port}/fairness/${C}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('immutable');
    const etag = res.headers.get('etag')!;
    const body = (await res.json()) as { finalHead: Head; leaves: string[] };
    expect(body.leaves).toHaveLength(body.finalHead.size);
    expect((await fetch(`http://127.0.0.1:${app.port}/fairness/${C}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const keys = (await (await fetch(`http://127.0.0.1:${app.port}/.well-known/firstcome-fairness.json`)).json()) as {
      keys: { publicKey: string }[];
    };
    expect(keys.keys[0]!.publicKey).toContain('BEGIN PUBLIC KEY');
    expect((await fetch(`http://127.0.0.1:${app.port}/fairness/Not_An_Id`)).status).toBe(400);
  });

  it('replays REDIS and then ALL: the same signed heads, bit for bit, and none signed anew', async () => {
    const before = await fairness();
    const logBefore = await headsInLog();
    const rows = () => prisma.lineHead.findMany({ where: { campaignId: C }, orderBy: [{ size: 'asc' }, { final: 'asc' }] });
    const rowsBefore = await rows();
    expect(logBefore.length).toBeGreaterThan(0);
    expect(rowsBefore.map((r) => r.signature)).toEqual(logBefore.map((e) => (e as { signature: string }).signature));
    await replay('REDIS');
    expect(await headsInLog()).toEqual(logBefore);
    await replay('ALL');
    // the read model emptied and filled again from the log: the same rows
    expect(await eventually(rows, (r) => r.length === rowsBefore.length)).toEqual(rowsBefore);
    expect(await headsInLog()).toEqual(logBefore);
    expect(await fairness()).toEqual(before);
  });
});
