import { randomBytes } from 'node:crypto';

/** Crockford base32: no I, L, O or U, so a code read out over the phone survives. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** 130 bits: 26 symbols of 5 bits, from the CSPRNG. */
export const CODE_BITS = 130;
const SYMBOLS = CODE_BITS / 5;

/**
 * A gifticon code such as `7K2Q-M9XD-4TRB-…`. Minted once, by the decider, and carried in the
 * GifticonIssued event so that every replay reproduces it instead of minting a new one.
 */
export function mintGifticonCode(random: (n: number) => Buffer = randomBytes): string {
  const bytes = random(17); // 136 bits, of which 130 are used
  let acc = 0n;
  for (const b of bytes) acc = (acc << 8n) | BigInt(b);
  acc >>= 6n;
  let out = '';
  for (let i = 0; i < SYMBOLS; i++) {
    out = ALPHABET[Number(acc & 31n)]! + out;
    acc >>= 5n;
  }
  return out.match(/.{1,4}/g)!.join('-');
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
  return `g_${randomBytes(12).toString('base64url')}`;
}
