import { createHash, hash } from 'node:crypto';

/**
 * RFC 9162's Merkle tree over SHA-256: leaf hash `H(0x00 ‖ leaf)`, node hash `H(0x01 ‖ l ‖ r)`,
 * the tree of n leaves split at the largest power of two below n. Proofs are generated and checked
 * exactly as its §2.1.3 (inclusion) and §2.1.4 (consistency) say, so any RFC 9162 / Certificate
 * Transparency verifier accepts them.
 */
export type Hash = Buffer;

// crypto.hash (one shot) costs about 40% of a createHash object here: the writer pays two per entrant
export function leafHash(leaf: string | Uint8Array): Hash {
  const bytes = typeof leaf === 'string' ? Buffer.from(leaf, 'utf8') : leaf;
  const input = Buffer.allocUnsafe(bytes.length + 1);
  input[0] = 0;
  input.set(bytes, 1);
  return hash('sha256', input, 'buffer') as unknown as Hash;
}

export function nodeHash(left: Hash, right: Hash): Hash {
  const input = Buffer.allocUnsafe(65);
  input[0] = 1;
  left.copy(input, 1);
  right.copy(input, 33);
  return hash('sha256', input, 'buffer') as unknown as Hash;
}

const EMPTY_ROOT = createHash('sha256').digest();

/** The largest power of two strictly below n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The compact range of a growing tree, as the writer needs it: the roots of its perfect subtrees,
 * largest first, and nothing else. O(log n) memory; appending a leaf costs on average one node
 * hash, the root at most log2(n).
 */
export class MerkleFrontier {
  private count = 0;
  private readonly range: { height: number; hash: Hash }[] = [];

  get size(): number {
    return this.count;
  }

  append(hash: Hash): void {
    this.count++;
    let node = { height: 0, hash };
    while (this.range.length > 0 && this.range[this.range.length - 1]!.height === node.height) {
      const left = this.range.pop()!;
      node = { height: node.height + 1, hash: nodeHash(left.hash, node.hash) };
    }
    this.range.push(node);
  }

  root(): Hash {
    if (this.range.length === 0) return EMPTY_ROOT;
    let acc = this.range[this.range.length - 1]!.hash;
    for (let i = this.range.length - 2; i >= 0; i--) acc = nodeHash(this.range[i]!.hash, acc);
    return acc;
  }
}

/**
 * A growing tree of leaf hashes. It keeps every leaf hash (32 bytes each) and, alongside, the
 * roots of its full power-of-two subtrees (the compact range), so appending a leaf costs one leaf
 * hash plus on average one node hash, and the root of the whole tree costs at most log2(n) more.
 */
export class MerkleTree {
  private readonly leaves: Hash[] = [];
  private readonly frontier = new MerkleFrontier();
  /** memo of ranges' roots by `start:n` (filled by proofs; never invalidated: a range of an append-only tree never changes) */
  private readonly memo = new Map<string, Hash>();

  get size(): number {
    return this.leaves.length;
  }

  append(hash: Hash): void {
    this.leaves.push(hash);
    this.frontier.append(hash);
  }

  /** The root of the tree's whole current size. */
  root(): Hash {
    return this.frontier.root();
  }

  appendLeaf(leaf: string): void {
    this.append(leafHash(leaf));
  }

  leafHashAt(index: number): Hash {
    const h = this.leaves[index];
    if (!h) throw new RangeError(`no leaf ${index} in a tree of ${this.size}`);
    return h;
  }

  /** MTH(D[start:start+n]) per RFC 9162 §2.1.1. */
  rootOf(start: number, n: number): Hash {
    if (start + n > this.size) throw new RangeError(`the tree holds ${this.size} leaves, not ${start + n}`);
    if (n === 0) return EMPTY_ROOT;
    if (n === 1) return this.leaves[start]!;
    // leaves are only appended: the root of any range already held never changes
    const key = `${start}:${n}`;
    const m = this.memo.get(key);
    if (m) return m;
    const k = split(n);
    const h = nodeHash(this.rootOf(start, k), this.rootOf(start + k, n - k));
    this.memo.set(key, h);
    return h;
  }

  /** PATH(m, D[0:size]) of RFC 9162 §2.1.3.1: the audit path of leaf `index` in the tree of `size` leaves. */
  inclusionProof(index: number, size: number): Hash[] {
    if (!(index >= 0 && index < size && size <= this.size)) throw new RangeError(`no leaf ${index} in a tree of ${size}`);
    const path: Hash[] = [];
    const walk = (m: number, start: number, n: number) => {
      if (n <= 1) return;
      const k = split(n);
      if (m < k) {
        walk(m, start, k);
        path.push(this.rootOf(start + k, n - k));
      } else {
        walk(m - k, start + k, n - k);
        path.push(this.rootOf(start, k));
      }
    };
    walk(index, 0, size);
    return path;
  }

  /** PROOF(m, D[0:n]) of RFC 9162 §2.1.4.1: the tree of `from` leaves is a prefix of the tree of `to` leaves. */
  consistencyProof(from: number, to: number): Hash[] {
    if (!(from >= 0 && from <= to && to <= this.size))
      throw new RangeError(`no consistency proof from ${from} to ${to} in a tree of ${this.size}`);
    if (from === 0 || from === to) return [];
    const proof: Hash[] = [];
    const sub = (m: number, start: number, n: number, b: boolean) => {
      if (m === n) {
        if (!b) proof.push(this.rootOf(start, n));
        return;
      }
      const k = split(n);
      if (m <= k) {
        sub(m, start, k, b);
        proof.push(this.rootOf(start + k, n - k));
      } else {
        sub(m - k, start + k, n - k, false);
        proof.push(this.rootOf(start, k));
      }
    };
    sub(from, 0, to, true);
    return proof;
  }
}

/** RFC 9162 §2.1.3.2: does `proof` show the leaf hash at `index` in the tree of `size` leaves with `root`? */
export function verifyInclusion(leaf: Hash, index: number, size: number, proof: readonly Hash[], root: Hash): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else r = nodeHash(r, p);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 §2.1.4.2: does `proof` show the tree of `from` leaves with `fromRoot` is a prefix of the tree of `to` leaves with `toRoot`? */
export function verifyConsistency(from: number, to: number, proof: readonly Hash[], fromRoot: Hash, toRoot: Hash): boolean {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from > to) return false;
  if (from === to) return proof.length === 0 && fromRoot.equals(toRoot);
  if (from === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = [...proof];
  // 2. if first is an exact power of 2, prepend first_hash to the proof
  if ((from & (from - 1)) === 0) path.unshift(fromRoot);
  let fn = from - 1;
  let sn = to - 1;
  // 4. right-shift both until LSB(fn) is not set
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else sr = nodeHash(sr, c);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return fr.equals(fromRoot) && sr.equals(toRoot) && sn === 0;
}

export const toHex = (h: Hash): string => h.toString('hex');

/** A lowercase hex SHA-256 string as a hash; null for anything else. */
export function fromHex(s: unknown): Hash | null {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s) ? Buffer.from(s, 'hex') : null;
}
