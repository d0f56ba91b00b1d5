import type { FairnessKey, SignedHead } from '../../domain/fairness/line.js';
import { leafOf } from '../../domain/fairness/line.js';
import { MerkleTree, toHex } from '../../domain/fairness/merkle.js';
import type { Receipt } from '../../domain/fairness/verify.js';
import type { PrismaClient } from '../../infra/prisma/client.js';

/**
 * The public proofs of issue 31, read from the Postgres read model: the heads the writer signed
 * (`line_heads`), and the line's leaves, rebuilt from `entries` (position, ticket, user) and each
 * user's nonce (derived from FAIRNESS_KEY, as the writer derives it). A campaign's tree is kept
 * in memory and grown as entries arrive; once its final head is covered it never changes.
 */
export interface Heads {
  heads: SignedHead[];
  finalHead: SignedHead | null;
}

interface Line {
  tree: MerkleTree;
  leaves: string[];
  stock: number;
  heads: Heads;
  /** the winners' leaf indices as the read model holds them, once the final head is read */
  winners: number[] | null;
  /** when the heads and entries were last read (an open campaign's are read again after REFRESH_MS) */
  readAt: number;
  reading: Promise<void> | null;
}

/** how stale an open campaign's heads and leaves may be */
const REFRESH_MS = 250;
/** campaigns whose trees are kept (the latest used) */
const KEEP = 16;

export class FairnessReader {
  private readonly lines = new Map<string, Line>();
  /** closed campaigns' `/fairness/<id>` bodies, kept whole: after a big drop every verifier asks for the same one */
  readonly closedBodies = new Map<string, { body: string; etag: string }>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly key: FairnessKey,
  ) {}

  /** The public keys heads are signed with, as `/.well-known/firstcome-fairness.json` serves them. */
  keys(): { keys: { keyId: string; publicKey: string }[] } {
    return { keys: [{ keyId: this.key.keyId, publicKey: this.key.publicPem() }] };
  }

  /** The campaign's line as the read model has it now; null when there is no such campaign. */
  async line(campaignId: string): Promise<Line | null> {
    let l = this.lines.get(campaignId);
    if (!l) {
      const c = await this.prisma.campaign.findUnique({ where: { id: campaignId }, select: { stock: true } });
      if (!c) return null;
      l = {
        tree: new MerkleTree(),
        leaves: [],
        stock: c.stock,
        heads: { heads: [], finalHead: null },
        winners: null,
        readAt: 0,
        reading: null,
      };
      this.lines.set(campaignId, l);
      if (this.lines.size > KEEP) this.lines.delete(this.lines.keys().next().value!);
    } else {
      // most recently used last
      this.lines.delete(campaignId);
      this.lines.set(campaignId, l);
    }
    const complete = l.heads.finalHead !== null && l.tree.size >= l.heads.finalHead.size;
    if (!complete && Date.now() - l.readAt >= REFRESH_MS) {
      const line = l;
      line.reading ??= this.refresh(campaignId, line).finally(() => (line.reading = null));
      await line.reading;
    }
    return l;
  }

  private async refresh(campaignId: string, l: Line): Promise<void> {
    const rows = await this.prisma.lineHead.findMany({ where: { campaignId }, orderBy: [{ size: 'asc' }, { final: 'asc' }] });
    const heads = rows.map((r) => ({ campaignId, size: r.size, root: r.root, at: r.at, keyId: r.keyId, signature: r.signature }));
    const final = rows.findIndex((r) => r.final);
    // entries in position order, from the first the tree lacks; a gap (not projected yet) ends the read
    for (;;) {
      const entries = await this.prisma.entry.findMany({
        where: { campaignId, position: { gt: l.tree.size } },
        orderBy: { position: 'asc' },
        select: { position: true, ticket: true, userId: true },
        take: 10_000,
      });
      for (const e of entries) {
        if (e.position !== l.tree.size + 1) break;
        const leaf = leafOf(campaignId, e.position, e.ticket, e.userId, this.key.nonce(campaignId, e.userId));
        l.leaves.push(leaf);
        l.tree.appendLeaf(leaf);
      }
      if (entries.length < 10_000) break;
    }
    if (final >= 0) {
      const won = await this.prisma.winner.findMany({ where: { campaignId }, orderBy: { position: 'asc' }, select: { position: true } });
      l.winners = won.map((w) => w.position - 1);
    }
    l.heads = { heads, finalHead: final >= 0 ? heads[final]! : null };
    l.readAt = Date.now();
  }

  /** Resolves once the read model holds a head of at least `size` and its leaves (or after `timeoutMs`, whatever it holds). */
  async awaitHead(campaignId: string, size: number, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.line(campaignId);
      const newest = l && Math.max(l.heads.finalHead?.size ?? 0, l.heads.heads.at(-1)?.size ?? 0);
      if (!l || (newest! >= size && l.tree.size >= size) || Date.now() > end) return;
      await new Promise((r) => setTimeout(r, REFRESH_MS));
    }
  }

  /** The newest head that covers `position` and whose leaves the read model holds. */
  private headFor(l: Line, position: number): SignedHead | null {
    const { finalHead, heads } = l.heads;
    if (finalHead && finalHead.size >= position && finalHead.size <= l.tree.size) return finalHead;
    for (let i = heads.length - 1; i >= 0; i--) {
      const h = heads[i]!;
      if (h.size >= position && h.size <= l.tree.size) return h;
    }
    return null;
  }

  /** The owner's receipt, once a signed head covers the entry; null before. */
  async receipt(campaignId: string, userId: string, position: number | null, ticket: string): Promise<Receipt | null> {
    if (position === null) return null;
    const l = await this.line(campaignId);
    const head = l && this.headFor(l, position);
    if (!l || !head) return null;
    const leafIndex = position - 1;
    const nonce = this.key.nonce(campaignId, userId);
    const leaf = leafOf(campaignId, position, ticket, userId, nonce);
    // the line's leaf at this place must be this entry's (a read model behind the answer is not)
    if (l.leaves[leafIndex] !== leaf) return null;
    return { leafIndex, leaf, nonce, head, inclusionProof: l.tree.inclusionProof(leafIndex, head.size).map(toHex) };
  }

  /** RFC 9162 consistency proof between the heads of sizes `from` and `to`; null when the read model does not hold `to` leaves. */
  async consistencyProof(campaignId: string, from: number, to: number): Promise<string[] | null> {
    const l = await this.line(campaignId);
    if (!l || to > l.tree.size) return null;
    return l.tree.consistencyProof(from, to).map(toHex);
  }

  /** The `fairness` object: heads, final head, stock, and (after close) the winners as leaf indices. */
  async fairness(campaignId: string) {
    const l = await this.line(campaignId);
    if (!l) return null;
    const { heads, finalHead } = l.heads;
    return {
      campaignId,
      stock: l.stock,
      heads,
      finalHead,
      winners: finalHead ? l.winners : null,
      /** leaves from index `after` + 1, at most `first` of them, up to the final head once there is one */
      leavesPage: (first: number, after: number) =>
        l.leaves.slice(after + 1, Math.min(after + 1 + first, finalHead?.size ?? l.leaves.length)),
      allLeaves: () => l.leaves.slice(0, finalHead?.size ?? l.leaves.length),
    };
  }
}
