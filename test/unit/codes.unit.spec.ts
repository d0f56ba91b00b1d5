import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CODE_BITS, GIFTICON_CODE_PATTERN, gifticonCodeBits, mintGifticonCode } from '../../src/domain/codes.js';

const SYMBOL = /^[0-9A-HJKMNP-TV-Z]$/;

describe('gifticon codes', () => {
  it('carry at least 128 bits in Crockford base32 groups', () => {
    expect(CODE_BITS).toBeGreaterThanOrEqual(128);
    const code = mintGifticonCode();
    expect(code).toMatch(GIFTICON_CODE_PATTERN);
    expect(code.replaceAll('-', '')).toHaveLength(26);
  });

  it('have one shape only: six groups of four and a last group of two', () => {
    expect('7K2Q-M9XD-4TRB-0000-ZZZZ-ABCD-EF').toMatch(GIFTICON_CODE_PATTERN);
    for (const short of [
      '7K2Q-M9XD-4TRB-0000-ZZZZ-ABCD-E',
      '7K2Q-M9XD-4-0-Z-A-E',
      '7K2Q-M9X-4TRB-0000-ZZZZ-ABCD-EF',
      '7K2QM9XD4TRB0000ZZZZABCDEF',
    ]) {
      expect(short).not.toMatch(GIFTICON_CODE_PATTERN);
    }
    expect('7K2Q-M9XD-4TRB-0000-ZZZZ-ABCD-EFG').not.toMatch(GIFTICON_CODE_PATTERN);
    expect('7K2Q-M9XD-4TRB-0000-ZZZZ-ABCD-EU').not.toMatch(GIFTICON_CODE_PATTERN);
  });

  it('use every random bit: different bytes give different codes, equal bytes the same', () => {
    const zero = mintGifticonCode(() => Buffer.alloc(17, 0));
    const lastBitSet = mintGifticonCode(() => Buffer.from([...Array(16).fill(0), 0b0100_0000]));
    expect(zero).not.toBe(lastBitSet);
    expect(mintGifticonCode(() => Buffer.alloc(17, 7))).toBe(mintGifticonCode(() => Buffer.alloc(17, 7)));
  });

  it('carry the random bits they were minted from, all 130 of them', () => {
    for (let i = 0; i < 200; i++) {
      const bytes = randomBytes(17);
      const drawn = BigInt(`0x${bytes.toString('hex')}`) >> 6n;
      expect(gifticonCodeBits(mintGifticonCode(() => bytes))).toBe(drawn);
    }
  });

  // A minter that keeps the shape but pads with constant bits (e.g. 64 random bits and 72 zeros) has
  // positions that never change. 4,000 codes from 130 fair bits show every symbol at every position
  // (the chance that one of 26 × 32 is missing is below 1e-50) and every bit set in 40–60% of codes
  // (10 % off is 12 standard deviations).
  it('vary at every symbol position and every bit over many mints', () => {
    const N = 4_000;
    const codes = Array.from({ length: N }, () => mintGifticonCode());
    const positions = Array.from({ length: 26 }, () => new Set<string>());
    const ones = new Array<number>(CODE_BITS).fill(0);
    for (const code of codes) {
      const symbols = code.replaceAll('-', '');
      expect(symbols).toHaveLength(26);
      [...symbols].forEach((s, i) => positions[i]!.add(s));
      const bits = gifticonCodeBits(code);
      for (let b = 0; b < CODE_BITS; b++) if ((bits >> BigInt(b)) & 1n) ones[b]!++;
    }
    const stuck = positions.flatMap((seen, i) => (seen.size === 32 ? [] : [`symbol ${i}: ${seen.size} of 32 seen`]));
    expect(stuck).toEqual([]);
    for (const seen of positions) for (const s of seen) expect(s).toMatch(SYMBOL);
    const biased = ones.flatMap((n, b) => (n >= 0.4 * N && n <= 0.6 * N ? [] : [`bit ${b}: set in ${n} of ${N}`]));
    expect(biased).toEqual([]);
    expect(new Set(codes).size).toBe(N);
  });
});
