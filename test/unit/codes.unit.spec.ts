import { describe, expect, it } from 'vitest';
import { CODE_BITS, GIFTICON_CODE_PATTERN, mintGifticonCode } from '../../src/domain/codes.js';

describe('gifticon codes', () => {
  it('carry at least 128 bits in Crockford base32 groups', () => {
    expect(CODE_BITS).toBeGreaterThanOrEqual(128);
    const code = mintGifticonCode();
    expect(code).toMatch(GIFTICON_CODE_PATTERN);
    expect(code.replaceAll('-', '')).toHaveLength(26);
  });

  it('use every random bit: different bytes give different codes, equal bytes the same', () => {
    const zero = mintGifticonCode(() => Buffer.alloc(17, 0));
    const lastBitSet = mintGifticonCode(() => Buffer.from([...Array(16).fill(0), 0b0100_0000]));
    expect(zero).not.toBe(lastBitSet);
    expect(mintGifticonCode(() => Buffer.alloc(17, 7))).toBe(mintGifticonCode(() => Buffer.alloc(17, 7)));
  });

  it('do not repeat over many mints', () => {
    const seen = new Set(Array.from({ length: 20_000 }, () => mintGifticonCode()));
    expect(seen.size).toBe(20_000);
  });
});
