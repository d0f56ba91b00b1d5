import { pooledRandom } from './pooledRandom.js';

/** Crockford base32: no I, L, O or U, so a code read out over the phone survives. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** 130 bits: 26 symbols of 5 bits, from the CSPRNG. */
export const CODE_BITS = 130;
const SYMBOLS = CODE_BITS / 5;

/**
 * A gifticon code such as `7K2Q-M9XD-4TRB-…`. Minted once, by the decider, and carried in the
 * GifticonIssued event so that every replay reproduces it instead of minting a new one.
 *
 * The symbols are the first 130 of 136 random bits, five at a time, most significant first.
 */
export function mintGifticonCode(random: (n: number) => Buffer = pooledRandom): string {
  const bytes = random(17); // 136 bits, of which 130 are used
  let out = '';
  let acc = 0;
  let bits = 0;
  let next = 0;
  for (let i = 0; i < SYMBOLS; i++) {
    if (bits < 5) {
      // never more than 12 bits held: plain numbers, no BigInt
      acc = ((acc << 8) | bytes[next++]!) & 0xfff;
      bits += 8;
    }
    bits -= 5;
    out += ALPHABET[(acc >> bits) & 31];
    if (i % 4 === 3 && i < SYMBOLS - 1) out += '-';
  }
  return out;
}

/**
 * The full shape, every group present: six groups of four and a last group of two (26 symbols, 130
 * bits). A code cut short (fewer bits than I2's 128) does not match.
 */
export const GIFTICON_CODE_PATTERN = /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){5}-[0-9A-HJKMNP-TV-Z]{2}$/;

/** The bits a code carries, most significant first; the inverse of the symbols `mintGifticonCode` writes. */
export function gifticonCodeBits(code: string): bigint {
  let acc = 0n;
  for (const c of code.replaceAll('-', '')) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) throw new Error(`not a Crockford base32 symbol: ${c}`);
    acc = (acc << 5n) | BigInt(v);
  }
  return acc;
}

export function mintGifticonId(): string {
  return `g_${pooledRandom(12).toString('base64url')}`;
}
