import { MerkleTree, fromHex, leafHash, verifyConsistency, verifyInclusion } from './merkle.js';
import { leafOf, parseLeaf, verifyHead, type SignedHead } from './line.js';

/**
 * The verifier: what a sceptical entrant checks with their receipt, the campaign's published
 * proofs and the published keys. Pure; `npm run verify` feeds it from files or a server.
 */

export interface Receipt {
  leafIndex: number;
  leaf: string;
  nonce: string;
  head: SignedHead;
  inclusionProof: string[];
}

/** A receipt file: the owner's `myEntry` (or a GraphQL answer holding it). */
export interface ReceiptEntry {
  campaignId: string;
  userId: string;
  ticket: string;
  position: number | null;
  status: string;
  receipt: Receipt | null;
}

/** The campaign's public proofs, as `GET /fairness/<id>` serves them (every leaf). */
export interface PublishedFairness {
  campaignId: string;
  stock: number;
  heads: SignedHead[];
  finalHead: SignedHead | null;
  leaves: string[];
  winners: number[] | null;
}

export type CheckName =
  | 'receipt'
  | 'leaf'
  | 'headSignature'
  | 'inclusion'
  | 'finalHead'
  | 'publishedHeads'
  | 'leaves'
  | 'consistency'
  | 'position'
  | 'winners'
  | 'status';

export interface Check {
  name: CheckName;
  ok: boolean;
  detail: string;
}

export interface Verdict {
  ok: boolean;
  checks: Check[];
}

/** A receipt file's entry, wherever it sits: `{data: {myEntry}}`, `{myEntry}` or the entry itself. */
export function entryOfFile(json: unknown): ReceiptEntry | null {
  const o = json as Record<string, unknown> | null;
  const data = o?.data as Record<string, unknown> | undefined;
  const e = (data?.myEntry ?? o?.myEntry ?? o) as ReceiptEntry | null;
  return e && typeof e === 'object' && typeof e.campaignId === 'string' && typeof e.userId === 'string' ? e : null;
}

export function verifyReceipt(entry: ReceiptEntry, published: PublishedFairness, keys: ReadonlyMap<string, string>): Verdict {
  const checks: Check[] = [];
  const check = (name: CheckName, ok: boolean, good: string, bad: string) => {
    checks.push({ name, ok, detail: ok ? good : bad });
    return ok;
  };
  const done = (): Verdict => ({ ok: checks.every((c) => c.ok), checks });
  const r = entry.receipt;
  const proof = Array.isArray(r?.inclusionProof) ? r.inclusionProof.map(fromHex) : [null];
  if (
    !check(
      'receipt',
      Boolean(r && r.head && typeof r.leaf === 'string' && typeof r.nonce === 'string' && proof.every(Boolean)),
      'present and well formed',
      'missing or malformed (no receipt yet?)',
    )
  )
    return done();
  const receipt = r!;
  const head = receipt.head;
  const position = entry.position ?? 0;

  // 1. the leaf is this user's, at this place
  const mine = leafOf(entry.campaignId, position, entry.ticket, entry.userId, receipt.nonce);
  check(
    'leaf',
    receipt.leaf === mine && receipt.leafIndex === position - 1 && head.campaignId === entry.campaignId,
    `leaf ${receipt.leafIndex} is this user's entry at position ${position}`,
    'the leaf does not match this user, nonce, ticket and position (or the head names another campaign)',
  );
  // 2. the head is signed by a published key
  check(
    'headSignature',
    verifyHead(head, keys),
    `signed by key ${head.keyId}`,
    `the receipt's head signature does not verify under key ${head.keyId}`,
  );
  // 3. the leaf is in that head
  const root = fromHex(head.root);
  check(
    'inclusion',
    root !== null && verifyInclusion(leafHash(receipt.leaf), receipt.leafIndex, head.size, proof as Buffer[], root),
    `included in the head of size ${head.size}`,
    `the inclusion proof does not lead from the leaf to the head's root`,
  );

  // 4. the published line: the final head (or, while the campaign runs, the latest), signed, rooted in every published leaf
  const final = published.finalHead ?? published.heads.reduce<SignedHead | null>((a, h) => (!a || h.size >= a.size ? h : a), null);
  if (
    !check(
      'finalHead',
      final !== null && final.campaignId === entry.campaignId && verifyHead(final, keys),
      published.finalHead
        ? `final head of size ${final?.size} signed`
        : `campaign still open: checked against the latest head (size ${final?.size})`,
      'no signed final head for this campaign',
    )
  )
    return done();
  const last = final!;
  const tree = new MerkleTree();
  for (const leaf of published.leaves.slice(0, last.size)) tree.append(leafHash(leaf));
  const lineOk =
    published.leaves.length >= last.size &&
    tree.root().toString('hex') === last.root &&
    published.leaves.slice(0, last.size).every((leaf, i, all) => {
      const p = parseLeaf(leaf);
      const before = i > 0 ? parseLeaf(all[i - 1]!) : null;
      // positions 1..n, in the log's order (tickets name ascending offsets of one partition)
      return p !== null && p.campaignId === entry.campaignId && p.position === i + 1 && (!before || ticketBefore(before.ticket, p.ticket));
    });
  check(
    'leaves',
    lineOk,
    `${last.size} published leaves, in log order, hash to the final root`,
    'the published leaves do not hash to the final head, or are out of order',
  );
  const badHeads = published.heads.filter(
    (h) =>
      !verifyHead(h, keys) ||
      h.size > last.size ||
      !verifyConsistency(
        h.size,
        last.size,
        tree.consistencyProof(Math.min(h.size, tree.size), tree.size),
        fromHex(h.root) ?? Buffer.alloc(0),
        fromHex(last.root)!,
      ),
  );
  check(
    'publishedHeads',
    badHeads.length === 0,
    `${published.heads.length} published heads, each signed and a prefix of the final one`,
    `${badHeads.length} published head(s) unsigned or not a prefix of the final one (first: size ${badHeads[0]?.size})`,
  );

  // 5. nobody was put ahead of the user after the receipt: the receipt's head is a prefix of the final one
  const consistent =
    root !== null &&
    head.size <= last.size &&
    lineOk &&
    verifyConsistency(head.size, last.size, tree.consistencyProof(head.size, last.size), root, fromHex(last.root)!);
  check(
    'consistency',
    consistent,
    `the receipt's head (size ${head.size}) is a prefix of the final head (size ${last.size})`,
    `the receipt's head (size ${head.size}) is not a prefix of the final head: the line changed after the receipt`,
  );
  // 6. the user's place in the published line
  check(
    'position',
    published.leaves[receipt.leafIndex] === receipt.leaf,
    `published leaf ${receipt.leafIndex} is this entry`,
    `published leaf ${receipt.leafIndex} is not this entry`,
  );

  // 7. the winners are the first `stock` leaves, and the user's status follows
  if (published.finalHead) {
    const expected = Math.min(published.stock, last.size);
    const w = published.winners ?? [];
    check(
      'winners',
      w.length === expected && w.every((x, i) => x === i),
      `winners are leaves 0..${expected - 1} (stock ${published.stock})`,
      `winners are not exactly the first ${expected} leaves: [${w.slice(0, 10).join(', ')}${w.length > 10 ? ', …' : ''}]`,
    );
  }
  const won = position >= 1 && position <= published.stock;
  check(
    'status',
    entry.status === (won ? 'WON' : 'LOST') || entry.status === 'QUEUED',
    `${entry.status} at position ${position} of stock ${published.stock}`,
    `${entry.status} at position ${position} of stock ${published.stock}`,
  );
  return done();
}

function ticketBefore(a: string, b: string): boolean {
  const [pa, oa] = a.split('-');
  const [pb, ob] = b.split('-');
  return pa === pb && BigInt(oa!) < BigInt(ob!);
}
