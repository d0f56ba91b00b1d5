import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  MerkleFrontier,
  MerkleTree,
  leafHash,
  nodeHash,
  toHex,
  verifyConsistency,
  verifyInclusion,
  type Hash,
} from '../../src/domain/fairness/merkle.js';

/** RFC 9162 §2.1.1 written the slow, obvious way: the oracle the tree is held to. */
function mth(leaves: readonly Hash[]): Hash {
  if (leaves.length === 0) return createHash('sha256').digest();
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** Certificate Transparency's test leaves and the roots of their first 1..8 (certificate-transparency-go, merkle tests). */
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

const frontier = (leaves: readonly Hash[]) => {
  const f = new MerkleFrontier();
  for (const h of leaves) f.append(h);
  return f;
};

const treeOf = (n: number, seed = 0) => {
  const t = new MerkleTree();
  for (let i = 0; i < n; i++) t.appendLeaf(`leaf ${seed} ${i}`);
  return t;
};

/** One byte of one hash flipped, a hash dropped, added or swapped: every way a proof can be bent. */
function mutations(proof: readonly Hash[]): Hash[][] {
  const out: Hash[][] = [];
  proof.forEach((h, i) => {
    const flipped = Buffer.from(h);
    flipped[i % 32] = flipped[i % 32]! ^ 1;
    out.push(proof.map((p, j) => (j === i ? flipped : p)));
    out.push(proof.filter((_, j) => j !== i));
    if (i + 1 < proof.length && !proof[i]!.equals(proof[i + 1]!))
      out.push(proof.map((p, j) => (j === i ? proof[i + 1]! : j === i + 1 ? proof[i]! : p)));
  });
  out.push([...proof, leafHash('extra')]);
  return out;
}

describe('the line Merkle tree (RFC 9162)', () => {
  it('gives Certificate Transparency’s roots for its test leaves', () => {
    const t = new MerkleTree();
    CT_LEAVES.forEach((hex, i) => {
      t.append(leafHash(Buffer.from(hex, 'hex')));
      expect(toHex(t.root())).toBe(CT_ROOTS[i]);
    });
  });

  it('keeps the root of every size equal to the recursive definition', () => {
    const t = new MerkleTree();
    const leaves: Hash[] = [];
    for (let n = 1; n <= 70; n++) {
      const h = leafHash(`x${n}`);
      leaves.push(h);
      t.append(h);
      expect(toHex(t.root())).toBe(toHex(mth(leaves)));
      expect(toHex(frontier(leaves).root())).toBe(toHex(t.root()));
      for (let m = 0; m <= n; m++) expect(toHex(t.rootOf(0, m))).toBe(toHex(mth(leaves.slice(0, m))));
    }
  });

  it('proves every leaf of every small tree and every prefix, and refuses the wrong index or root', () => {
    const t = treeOf(33);
    for (let size = 1; size <= 33; size++) {
      const root = t.rootOf(0, size);
      for (let i = 0; i < size; i++) {
        const proof = t.inclusionProof(i, size);
        expect(verifyInclusion(t.leafHashAt(i), i, size, proof, root)).toBe(true);
        if (size > 1) expect(verifyInclusion(t.leafHashAt(i), (i + 1) % size, size, proof, root)).toBe(false);
        // (the size is bound by the signed head, not by the path: RFC 9162 paths of sizes 3 and 4 can look alike)
        expect(verifyInclusion(t.leafHashAt(i), i, size, proof, t.rootOf(0, size === 1 ? 2 : size - 1))).toBe(false);
      }
      for (let from = 1; from <= size; from++) {
        const proof = t.consistencyProof(from, size);
        expect(verifyConsistency(from, size, proof, t.rootOf(0, from), root)).toBe(true);
        if (from < size) expect(verifyConsistency(from, size, proof, treeOf(from, 1).root(), root)).toBe(false);
      }
    }
  });

  it('proves inclusion and consistency over random lines split into random commits, and no mutated proof passes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (total, commits, seed) => {
          // the line grows commit by commit; each commit's head is the root at that size
          const t = new MerkleTree();
          const heads: { size: number; root: Hash }[] = [];
          let n = 0;
          for (const c of [...commits, total]) {
            const upto = Math.min(total, n + c);
            for (; n < upto; n++) t.appendLeaf(`${seed}\n${n + 1}\n0-${n * 3 + seed}`);
            if (heads.at(-1)?.size !== n) heads.push({ size: n, root: t.root() });
            if (n === total) break;
          }
          const last = heads.at(-1)!;
          for (const [hi, head] of heads.entries()) {
            // every leaf the head covers, proved against that head (sampled on big heads)
            const step = Math.max(1, Math.floor(head.size / 12));
            for (let i = 0; i < head.size; i += step) {
              const proof = t.inclusionProof(i, head.size);
              if (!verifyInclusion(t.leafHashAt(i), i, head.size, proof, head.root)) return false;
              if (i % (step * 4) === 0)
                for (const bad of mutations(proof)) if (verifyInclusion(t.leafHashAt(i), i, head.size, bad, head.root)) return false;
            }
            // each head against the next and against the last
            for (const later of [heads[hi + 1], last]) {
              if (!later) continue;
              const proof = t.consistencyProof(head.size, later.size);
              if (!verifyConsistency(head.size, later.size, proof, head.root, later.root)) return false;
              if (head.size < later.size)
                for (const bad of mutations(proof)) if (verifyConsistency(head.size, later.size, bad, head.root, later.root)) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 100 },
    );
    // ~3 s alone; the unit project runs files side by side on 2 cores
  }, 60_000);
});
