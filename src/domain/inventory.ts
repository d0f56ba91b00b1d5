import { createHash, createHmac } from 'node:crypto';
import { EVENT_VERSION, SEALED_GIFTICON_VERSION, eventIds, type CodesLoaded, type SealedGifticonIssued } from './events.js';
import { sealCode, type DataKey } from './sealing.js';

/**
 * An INVENTORY campaign's codes: the brand's list, loaded in chunks (`loadCodes`), each chunk one
 * CodesLoaded event. No I/O here; the data key comes from the vault (src/infra/codeKeys/vault.ts).
 */

/** at most this many codes a `loadCodes` call */
export const MAX_CODES_PER_CHUNK = 1000;
/** a brand's code: a PIN, a barcode's digits, a voucher string */
export const MAX_CODE_CHARS = 200;
/** a chunk id as given (`chunkId`) or derived (`chunkIdOf`) */
export const CHUNK_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The chunk id of a list of codes when none is given: the hex SHA-256 of its codes, each followed by
 * a newline. The same codes in the same order name the same chunk, so a rerun loads nothing twice.
 * A digest of the codes alone would let anyone who reads the log test a guess at a whole chunk;
 * 128 hex bits of a list of secrets is no more than that, and no single code can be read from it.
 */
export function chunkIdOf(codes: readonly string[]): string {
  const h = createHash('sha256');
  for (const c of codes) h.update(c).update('\n');
  return `sha256-${h.digest('hex').slice(0, 32)}`;
}

/**
 * A code's keyed hash within its campaign: HMAC-SHA256 under a key derived from the campaign's data
 * key (never the data key itself), hex. Equal codes of one campaign hash alike; without the data
 * key a hash tells nothing of its code.
 */
export function codeHash(dk: DataKey, code: string): string {
  const k = createHmac('sha256', dk.key).update('firstcome-code-hash').digest();
  return createHmac('sha256', k).update(code, 'utf8').digest('hex');
}

/** The event of one chunk: every code sealed, in the order given, with its keyed hash. */
export function codesLoaded(dk: DataKey, chunkId: string, codes: readonly string[], now: Date): CodesLoaded {
  return {
    type: 'CodesLoaded',
    version: EVENT_VERSION,
    eventId: eventIds.codes(dk.campaignId, chunkId),
    campaignId: dk.campaignId,
    occurredAt: now.toISOString(),
    chunkId,
    codes: codes.map((c) => ({ sealed: sealCode(dk, c), hash: codeHash(dk, c) })),
  };
}

/** What a chunk came to, once applied: how many of its codes were new, and the indices (0-based) of the others. */
export interface ChunkResult {
  loaded: number;
  duplicates: number[];
}

/**
 * Which codes of a chunk are kept, given the hashes kept before it (updated in place): the first
 * of each hash, in log order. The Redis projection does the same in lua/loadCodes.lua.
 */
export function keepCodes(seen: Set<string>, codes: CodesLoaded['codes']): { kept: string[]; result: ChunkResult } {
  const kept: string[] = [];
  const duplicates: number[] = [];
  codes.forEach((c, i) => {
    if (seen.has(c.hash)) duplicates.push(i);
    else {
      seen.add(c.hash);
      kept.push(c.sealed);
    }
  });
  return { kept, result: { loaded: kept.length, duplicates } };
}

/** The gifticon of an INVENTORY campaign's winner at `position`: the code loaded `position`-th, as it was sealed at load. */
export function loadedGifticon(
  campaignId: string,
  userId: string,
  position: number,
  sealed: string,
  gifticonId: string,
  now: Date,
): SealedGifticonIssued {
  return {
    type: 'GifticonIssued',
    version: SEALED_GIFTICON_VERSION,
    eventId: eventIds.gifticon(campaignId, userId),
    campaignId,
    occurredAt: now.toISOString(),
    userId,
    gifticonId,
    sealedCode: sealed,
    position,
  };
}
