import type { CodeOpener } from '../../domain/audit.js';
import type { Sealer } from '../../domain/campaign.js';
import type { Logged } from '../../domain/events.js';
import {
  isSealed,
  newDataKey,
  openCode,
  sealCode,
  sealedKeyId,
  SealError,
  unwrapKey,
  wrapKey,
  type DataKey,
} from '../../domain/sealing.js';
import type { PrismaClient } from '../prisma/client.js';
import type { KeyRing } from './keyRing.js';

/**
 * The one module that seals and opens gifticon codes for a campaign. Each campaign has one data key
 * (made the first time any process needs it), kept wrapped by the key ring in `code_data_keys`:
 * a table outside the read model, which no replay, flush or rewind touches.
 *
 *   const vault = new CodeVault(prisma, keyRing);
 *   const sealed = await vault.seal(campaignId, code);   // what a GifticonIssued carries (sealedCode)
 *   const code = await vault.open(campaignId, sealed);    // throws CodeKeyError, never with a code in it
 *
 * The single writer seals on its hot path without a round trip: `prepare(ids)` once per batch, then
 * `sealer.seal`. Keys are held `ttlMs` (a shredded key stops opening everywhere within it).
 */
export class CodeKeyError extends Error {
  constructor(
    message: string,
    /** 'shredded': erased on purpose; 'missing-kek' / 'wrong-kek': CODE_KEYS lacks or mismatches the wrapping key; 'altered' */
    readonly reason: 'shredded' | 'missing-kek' | 'wrong-kek' | 'altered' | 'wrong-key',
  ) {
    super(message);
    this.name = 'CodeKeyError';
  }
}

type Held = { dk: DataKey; at: number } | { error: CodeKeyError; at: number };

export class CodeVault {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly ring: KeyRing,
    private readonly opts: { ttlMs?: number } = {},
  ) {}

  /** Seals a code under the campaign's data key (made now when the campaign has none). */
  async seal(campaignId: string, code: string): Promise<string> {
    return sealCode(await this.dataKey(campaignId), code);
  }

  /**
   * A stored code in plaintext: a sealed one opened, a plaintext one (written before issue 29) as it
   * is. Throws CodeKeyError when its key is shredded, CODE_KEYS cannot unwrap it, or it does not open.
   */
  async open(campaignId: string, stored: string): Promise<string> {
    if (!isSealed(stored)) return stored;
    const dk = await this.dataKey(campaignId, { create: false });
    if (sealedKeyId(stored) !== dk.id)
      throw new CodeKeyError(`a code of campaign ${campaignId} names key ${sealedKeyId(stored)}, not the campaign's ${dk.id}`, 'wrong-key');
    try {
      return openCode(dk, stored);
    } catch (err) {
      if (err instanceof SealError) throw new CodeKeyError(`a code of campaign ${campaignId} does not open: ${err.message}`, 'altered');
      throw err;
    }
  }

  /** `open`, null instead of a CodeKeyError (a reader shows no code rather than failing). */
  openOrNull(campaignId: string, stored: string): Promise<string | null> {
    return this.open(campaignId, stored).catch((err: unknown) => {
      if (err instanceof CodeKeyError) return null;
      throw err;
    });
  }

  /** Loads (or makes) the data keys of these campaigns, so that `sealer` seals for them without waiting. */
  async prepare(campaignIds: Iterable<string>): Promise<void> {
    await Promise.all([...new Set(campaignIds)].map((id) => this.dataKey(id)));
  }

  /** Seals for campaigns `prepare` loaded; throws CodeKeyError for one it could not. */
  readonly sealer: Sealer = {
    seal: (campaignId, code) => {
      const h = this.held.get(campaignId);
      if (!h) throw new Error(`the data key of campaign ${campaignId} was not prepared`);
      if ('error' in h) throw h.error;
      return sealCode(h.dk, code);
    },
  };

  /** The campaign's data key; made (wrapped by the ring's current key) when it has none and `create`. */
  async dataKey(campaignId: string, { create = true } = {}): Promise<DataKey> {
    const h = this.held.get(campaignId);
    if (h && Date.now() - h.at < (this.opts.ttlMs ?? 30_000)) {
      if ('error' in h) throw h.error;
      return h.dk;
    }
    try {
      const dk = await this.load(campaignId, create);
      this.held.set(campaignId, { dk, at: Date.now() });
      return dk;
    } catch (err) {
      if (err instanceof CodeKeyError) this.held.set(campaignId, { error: err, at: Date.now() });
      throw err;
    }
  }

  private async load(campaignId: string, create: boolean): Promise<DataKey> {
    let row = await this.prisma.codeDataKey.findUnique({ where: { campaignId } });
    if (!row && create) {
      const dk = newDataKey(campaignId);
      const { id: kekId, key: kek } = this.ring.current;
      // two processes making it at once: the unique campaign id keeps the first
      await this.prisma.codeDataKey.createMany({
        data: [{ keyId: dk.id, campaignId, kekId, wrapped: wrapKey(kek, dk), createdAt: new Date() }],
        skipDuplicates: true,
      });
      row = await this.prisma.codeDataKey.findUnique({ where: { campaignId } });
    }
    if (!row) throw new CodeKeyError(`campaign ${campaignId} has no data key: it has no sealed codes`, 'missing-kek');
    if (row.wrapped === null || row.kekId === null)
      throw new CodeKeyError(`the data key of campaign ${campaignId} was shredded: its codes are erased`, 'shredded');
    const kek = this.ring.byId.get(row.kekId);
    if (!kek)
      throw new CodeKeyError(
        `the data key of campaign ${campaignId} is wrapped by key ${row.kekId}, which CODE_KEYS does not hold: add it to the ring`,
        'missing-kek',
      );
    try {
      return unwrapKey(kek, row.wrapped, row.keyId, campaignId);
    } catch (err) {
      if (err instanceof SealError)
        throw new CodeKeyError(
          `key ${row.kekId} of CODE_KEYS does not unwrap the data key of campaign ${campaignId}: CODE_KEYS holds another key under that id`,
          'wrong-kek',
        );
      throw err;
    }
  }

  /** Forgets what it holds: the next use reads the table again. */
  forget(campaignId?: string): void {
    if (campaignId === undefined) this.held.clear();
    else this.held.delete(campaignId);
  }
}

/**
 * The audit's opener for a log (src/domain/audit.ts is pure: it is handed the plaintexts): every
 * gifticon's code opened beforehand; one whose key cannot be had reads null (left unchecked).
 */
export async function openerFor(vault: CodeVault, log: readonly Logged[]): Promise<CodeOpener> {
  const opened = new Map<string, string | null>();
  for (const { event: e } of log) {
    if (e.type !== 'GifticonIssued') continue;
    opened.set(e.eventId, 'code' in e ? e.code : await vault.openOrNull(e.campaignId, e.sealedCode));
  }
  return (e) => opened.get(e.eventId) ?? null;
}
