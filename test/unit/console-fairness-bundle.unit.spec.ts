import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fairnessBundle } from '../../src/api/console/fairnessBundle.js';
import { FairnessKey, leafOf } from '../../src/domain/fairness/line.js';
import { MerkleTree, leafHash, toHex } from '../../src/domain/fairness/merkle.js';
import * as node from '../../src/domain/fairness/verify.js';
import type { PublishedFairness, ReceiptEntry } from '../../src/domain/fairness/verify.js';

/**
 * The console's receipt check runs the fairness library bundled for the browser, with @noble's
 * SHA-256 and Ed25519 in place of node:crypto. Here the bundle itself (no node:crypto in it) and
 * the library under Node judge the same honest and tampered receipts: the same verdicts, check by
 * check, and the tampered ones fail.
 */
const C = 'bundle-drop';
const keyOf = (kid: string) =>
  FairnessKey.parse(`${kid}:${generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64')}`);
const KEY = keyOf('k1');
const KEYS = new Map([[KEY.keyId, KEY.publicPem()]]);
const USERS = Array.from({ length: 11 }, (_, i) => `user-${i}`);

function operate(users: string[], key = KEY) {
  const leaves = users.map((u, i) => leafOf(C, i + 1, `0-${10 + i}`, u, key.nonce(C, u)));
  const tree = new MerkleTree();
  leaves.forEach((l) => tree.append(leafHash(l)));
  const head = (size: number) =>
    key.sign({ campaignId: C, size, root: toHex(tree.rootOf(0, size)), at: new Date(size * 1000).toISOString() });
  const mid = head(6);
  const finalHead = head(users.length);
  const published: PublishedFairness = { campaignId: C, stock: 4, heads: [mid, finalHead], finalHead, leaves, winners: [0, 1, 2, 3] };
  const receiptOf = (userId: string): ReceiptEntry => {
    const i = users.indexOf(userId);
    const h = i < mid.size ? mid : finalHead;
    const receipt = {
      leafIndex: i,
      leaf: leaves[i]!,
      nonce: key.nonce(C, userId),
      head: h,
      inclusionProof: tree.inclusionProof(i, h.size).map(toHex),
    };
    return { campaignId: C, userId, ticket: `0-${10 + i}`, position: i + 1, status: i < 4 ? 'WON' : 'LOST', receipt };
  };
  return { published, receiptOf };
}

let dir: string;
let browser: typeof node;
beforeAll(async () => {
  const code = (await fairnessBundle()).toString('utf8');
  // the browser's build must not lean on Node: no node:crypto, no require
  expect(code).not.toMatch(/node:crypto|require\(/);
  dir = await mkdtemp(path.join(tmpdir(), 'fc-bundle-'));
  await writeFile(path.join(dir, 'fairness.mjs'), code);
  browser = await import(pathToFileURL(path.join(dir, 'fairness.mjs')).href);
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the receipt check bundled for the console', () => {
  const honest = operate(USERS);
  const r = honest.receiptOf('user-7');
  const sig = Buffer.from(r.receipt!.head.signature, 'base64');
  sig[5] = sig[5]! ^ 0x10;
  const swapped = [...USERS];
  [swapped[1], swapped[7]] = [swapped[7]!, swapped[1]!];
  const rekeyed = operate(USERS, keyOf('k1'));
  const cases: [string, ReceiptEntry, PublishedFairness, string[]][] = [
    ['an honest receipt', r, honest.published, []],
    ['a changed position', { ...r, position: 3 }, honest.published, ['leaf']],
    [
      'a changed leaf',
      { ...r, receipt: { ...r.receipt!, leaf: r.receipt!.leaf.replace(/.$/, (c) => (c === '0' ? '1' : '0')) } },
      honest.published,
      ['leaf', 'inclusion', 'position'],
    ],
    [
      'a wrong signature',
      { ...r, receipt: { ...r.receipt!, head: { ...r.receipt!.head, signature: sig.toString('base64') } } },
      honest.published,
      ['headSignature'],
    ],
    ['a line reordered after the receipt', r, operate(swapped).published, ['consistency', 'position']],
    ['a head signed by an unpublished key', rekeyed.receiptOf('user-7'), rekeyed.published, ['headSignature', 'finalHead']],
    ['a winner outside the first stock', r, { ...honest.published, winners: [0, 1, 2, 9] }, ['winners']],
  ];

  it.each(cases)('%s: the same verdict as under Node', (_, entry, published, failing) => {
    const there = browser.verifyReceipt(entry, published, KEYS);
    const here = node.verifyReceipt(entry, published, KEYS);
    expect(there).toEqual(here);
    expect(there.ok).toBe(failing.length === 0);
    expect(there.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(expect.arrayContaining(failing));
  });

  it('reads a receipt file as the CLI does', () => {
    expect(browser.entryOfFile({ data: { myEntry: r } })).toEqual(r);
    expect(browser.entryOfFile({ nothing: true })).toBeNull();
  });
});
