/** bloomfilter 1.1.0 ships no types: the part firstcome uses. */
declare module 'bloomfilter' {
  export class BloomFilter {
    /** `m` bits (rounded up to 32), `k` hash functions */
    constructor(m: number, k: number);
    add(v: string): void;
    /** false: certainly never added; true: maybe */
    test(v: string): boolean;
  }
}
