import { Command } from 'commander';
import { FairnessKey, leafOf } from '../src/domain/fairness/line.js';
import { MerkleFrontier, MerkleTree, leafHash, toHex } from '../src/domain/fairness/merkle.js';
import { verifyReceipt, type PublishedFairness, type ReceiptEntry } from '../src/domain/fairness/verify.js';

/**
 * `npm run bench:receipts`: what issue 31's proofs cost, in one process, without the stores:
 * the writer's work per fresh entrant (nonce, leaf, leaf hash, compact range), the API's to build a
 * line of N entrants and hand out receipts, a receipt's bytes, the `/fairness/<id>` body's bytes,
 * and the verifier's time per receipt. The read model's query (one per campaign, then cached) is not in it.
 */
const opts = new Command()
  .option('--entrants <n>', 'the line', (v) => Number(v), 20_000)
  .option('--receipts <n>', 'receipts handed out', (v) => Number(v), 1_000)
  .parse()
  .opts<{ entrants: number; receipts: number }>();

const key = FairnessKey.parse('bench:MC4CAQAwBQYDK2VwBCIEIHMUBnGS0Qyt/4z2pQSZPjcEpQ1/mcCfBYmj0G/P87Q9');
const C = 'bench-drop';
const N = opts.entrants;
const users = Array.from({ length: N }, (_, i) => ({
  userId: `user-${i.toString(36)}-${(i * 7919).toString(36)}`,
  ticket: `3-${1000 + i * 3}`,
}));
const ms = (t0: number) => performance.now() - t0;

// 1. the writer: per fresh entrant, as lineHeads.ts grows a campaign
let t0 = performance.now();
const frontier = new MerkleFrontier();
for (const [i, u] of users.entries()) frontier.append(leafHash(leafOf(C, i + 1, u.ticket, u.userId, key.nonce(C, u.userId))));
const writerMs = ms(t0);
t0 = performance.now();
const SIGNS = 200;
for (let i = 0; i < SIGNS; i++) key.sign({ campaignId: C, size: N, root: toHex(frontier.root()), at: new Date().toISOString() });
const signMs = ms(t0) / SIGNS;

// 2. the API: the line rebuilt from the read model's rows, then receipts
t0 = performance.now();
const tree = new MerkleTree();
const leaves: string[] = [];
for (const [i, u] of users.entries()) {
  const leaf = leafOf(C, i + 1, u.ticket, u.userId, key.nonce(C, u.userId));
  leaves.push(leaf);
  tree.appendLeaf(leaf);
}
const buildMs = ms(t0);
const finalHead = key.sign({ campaignId: C, size: N, root: toHex(tree.root()), at: new Date().toISOString() });
const stock = Math.ceil(N / 10);
const receiptOf = (i: number): ReceiptEntry => ({
  campaignId: C,
  userId: users[i]!.userId,
  ticket: users[i]!.ticket,
  position: i + 1,
  status: i < stock ? 'WON' : 'LOST',
  receipt: {
    leafIndex: i,
    leaf: leaves[i]!,
    nonce: key.nonce(C, users[i]!.userId),
    head: finalHead,
    inclusionProof: tree.inclusionProof(i, N).map(toHex),
  },
});
const sample = Array.from({ length: opts.receipts }, (_, k) => Math.floor((k * N) / opts.receipts));
t0 = performance.now();
let bytes = 0;
for (const i of sample) bytes += JSON.stringify({ data: { myEntry: receiptOf(i) } }).length;
const receiptsMs = ms(t0);
const receiptBytes = [0, Math.floor(N / 2), N - 1].map((i) => JSON.stringify({ data: { myEntry: receiptOf(i) } }).length);

const published: PublishedFairness = {
  campaignId: C,
  stock,
  heads: [finalHead],
  finalHead,
  leaves,
  winners: Array.from({ length: stock }, (_, i) => i),
};
const bodyBytes = JSON.stringify(published).length;

// 3. the verifier, as `npm run verify` runs it per receipt (it rebuilds the whole line each time)
const keys = new Map([[key.keyId, key.publicPem()]]);
const VERIFY = 20;
t0 = performance.now();
for (let k = 0; k < VERIFY; k++) if (!verifyReceipt(receiptOf(sample[k]!), published, keys).ok) throw new Error('a receipt did not hold');
const verifyMs = ms(t0) / VERIFY;

const rows: [string, string][] = [
  ['entrants', N.toLocaleString('en')],
  ['writer: µs per fresh entrant (nonce, leaf, hashes)', ((writerMs * 1000) / N).toFixed(2)],
  ['writer: µs per head signed', (signMs * 1000).toFixed(0)],
  ['API: ms to build the line from its rows', buildMs.toFixed(0)],
  [`API: ms for ${opts.receipts.toLocaleString('en')} receipts (proofs + JSON)`, receiptsMs.toFixed(1)],
  ['receipt bytes (first, middle, last entrant)', receiptBytes.join(', ')],
  ['mean receipt bytes', (bytes / sample.length).toFixed(0)],
  ['/fairness/<id> body bytes', bodyBytes.toLocaleString('en')],
  ['verifier: ms per receipt', verifyMs.toFixed(0)],
];
const w = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
