import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FairnessKey, leafOf, type SignedHead } from '../../src/domain/fairness/line.js';
import { MerkleTree, leafHash, toHex } from '../../src/domain/fairness/merkle.js';
import { verifyReceipt, type PublishedFairness, type ReceiptEntry } from '../../src/domain/fairness/verify.js';

const newKey = (kid: string) => {
  const der = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'der' });
  return FairnessKey.parse(`${kid}:${der.toString('base64')}`);
};
const KEY = newKey('k1');
const KEYS = new Map([[KEY.keyId, KEY.publicPem()]]);
const C = 'drop-1';
const AT = (s: number) => new Date(Date.UTC(2026, 11, 6, 9, 0, s)).toISOString();

interface Entrant {
  userId: string;
  ticket: string;
}

/** What an operator publishes for a line: its leaves, a head at each size asked for, the final head, the winners. */
function operate(line: Entrant[], stock: number, headSizes: number[], key = KEY) {
  const leaves = line.map((e, i) => leafOf(C, i + 1, e.ticket, e.userId, key.nonce(C, e.userId)));
  const tree = new MerkleTree();
  leaves.forEach((l) => tree.append(leafHash(l)));
  const headAt = (size: number, at = AT(size)) => key.sign({ campaignId: C, size, root: toHex(tree.rootOf(0, size)), at });
  const heads = headSizes.map((s) => headAt(s));
  const finalHead = headAt(line.length, AT(59));
  const published: PublishedFairness = {
    campaignId: C,
    stock,
    heads: [...heads, finalHead],
    finalHead,
    leaves,
    winners: Array.from({ length: Math.min(stock, line.length) }, (_, i) => i),
  };
  /** the owner's myEntry, with the receipt under the first head that covers them */
  const receiptOf = (userId: string): ReceiptEntry => {
    const i = line.findIndex((e) => e.userId === userId);
    const head: SignedHead = heads.find((h) => h.size > i) ?? finalHead;
    return {
      campaignId: C,
      userId,
      ticket: line[i]!.ticket,
      position: i + 1,
      status: i < stock ? 'WON' : 'LOST',
      receipt: {
        leafIndex: i,
        leaf: leaves[i]!,
        nonce: key.nonce(C, userId),
        head,
        inclusionProof: tree.inclusionProof(i, head.size).map(toHex),
      },
    };
  };
  return { published, receiptOf, leaves, tree };
}

const LINE: Entrant[] = Array.from({ length: 12 }, (_, i) => ({ userId: `user-${i}`, ticket: `3-${100 + i * 7}` }));
const failed = (v: ReturnType<typeof verifyReceipt>) => v.checks.filter((c) => !c.ok).map((c) => c.name);

describe('the receipt verifier', () => {
  it('accepts every honest receipt against the final head', () => {
    const { published, receiptOf } = operate(LINE, 4, [3, 7, 10]);
    for (const e of LINE) {
      const v = verifyReceipt(receiptOf(e.userId), published, KEYS);
      expect(failed(v), e.userId).toEqual([]);
      expect(v.ok).toBe(true);
    }
  });

  it('detects a line reordered after the receipt', () => {
    const honest = operate(LINE, 4, [7]);
    const receipt = honest.receiptOf('user-5');
    const swapped = [...LINE];
    [swapped[2], swapped[5]] = [swapped[5]!, swapped[2]!];
    const v = verifyReceipt(receipt, operate(swapped, 4, [7]).published, KEYS);
    expect(v.ok).toBe(false);
    expect(failed(v)).toEqual(expect.arrayContaining(['consistency', 'position']));
  });

  it('detects an entry inserted ahead after the receipt was given', () => {
    const honest = operate(LINE, 4, [7]);
    const receipt = honest.receiptOf('user-6');
    const inserted = [{ userId: 'friend', ticket: '3-99' }, ...LINE];
    const v = verifyReceipt(receipt, operate(inserted, 4, [8]).published, KEYS);
    expect(v.ok).toBe(false);
    expect(failed(v)).toEqual(expect.arrayContaining(['consistency', 'position']));
  });

  it('detects a dropped entry', () => {
    const honest = operate(LINE, 4, [7]);
    const receipt = honest.receiptOf('user-6');
    const dropped = LINE.filter((e) => e.userId !== 'user-1');
    const v = verifyReceipt(receipt, operate(dropped, 4, [6]).published, KEYS);
    expect(v.ok).toBe(false);
    expect(failed(v)).toContain('consistency');
  });

  it('detects a dropped entry behind the user too (the published line no longer holds the receipt’s head)', () => {
    const honest = operate(LINE, 4, [9]);
    const receipt = honest.receiptOf('user-2');
    const dropped = LINE.filter((e) => e.userId !== 'user-7');
    const v = verifyReceipt(receipt, operate(dropped, 4, [8]).published, KEYS);
    expect(failed(v)).toContain('consistency');
  });

  it('detects a forged signature and a head re-signed under another key', () => {
    const { published, receiptOf } = operate(LINE, 4, [7]);
    const receipt = receiptOf('user-3');
    const sig = Buffer.from(receipt.receipt!.head.signature, 'base64');
    sig[0] = sig[0]! ^ 1;
    const forged = { ...receipt, receipt: { ...receipt.receipt!, head: { ...receipt.receipt!.head, signature: sig.toString('base64') } } };
    expect(failed(verifyReceipt(forged, published, KEYS))).toContain('headSignature');

    // the same line signed by a key of the same id that was never published
    const rekeyed = operate(LINE, 4, [7], newKey('k1'));
    const v = verifyReceipt(rekeyed.receiptOf('user-3'), rekeyed.published, KEYS);
    expect(failed(v)).toEqual(expect.arrayContaining(['headSignature', 'finalHead']));
  });

  it('detects a winner outside the first stock leaves', () => {
    const { published, receiptOf } = operate(LINE, 4, [7]);
    const v = verifyReceipt(receiptOf('user-8'), { ...published, winners: [0, 1, 2, 8] }, KEYS);
    expect(failed(v)).toEqual(['winners']);
  });

  it('detects a status that does not follow the position', () => {
    const { published, receiptOf } = operate(LINE, 4, [7]);
    const v = verifyReceipt({ ...receiptOf('user-5'), status: 'WON' }, published, KEYS);
    expect(failed(v)).toEqual(['status']);
  });

  it('detects a receipt head that is not consistent with the final head', () => {
    const honest = operate(LINE, 4, [7]);
    // a properly signed head over another line of the same size (a fork shown to this user only)
    const fork = operate(
      LINE.map((e, i) => (i === 0 ? { userId: 'other', ticket: e.ticket } : e)),
      4,
      [7],
    );
    const receipt = honest.receiptOf('user-4');
    const forked = { ...receipt, receipt: { ...receipt.receipt!, head: fork.receiptOf('user-4').receipt!.head } };
    const v = verifyReceipt(forked, honest.published, KEYS);
    expect(failed(v)).toEqual(expect.arrayContaining(['inclusion', 'consistency']));
    // and the fork's own receipt, with its own proof, against the honest final head
    expect(failed(verifyReceipt(fork.receiptOf('user-4'), honest.published, KEYS))).toContain('consistency');
  });

  it('detects a leaf that is not the user’s (another nonce, ticket or position)', () => {
    const { published, receiptOf } = operate(LINE, 4, [7]);
    const r = receiptOf('user-2');
    expect(failed(verifyReceipt({ ...r, receipt: { ...r.receipt!, nonce: 'ff'.repeat(16) } }, published, KEYS))).toContain('leaf');
    expect(failed(verifyReceipt({ ...r, position: 2 }, published, KEYS))).toContain('leaf');
  });

  it('reveals no user id in the published leaves', () => {
    const { leaves } = operate(LINE, 4, [7]);
    for (const l of leaves) expect(l).not.toMatch(/user-/);
  });
});
