import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';

describe("a campaign's partition", () => {
  it('is the first 32 bits of the sha1 of its id, modulo the partitions: logs written before keep their place', () => {
    const vectors: [string, number, number, number][] = [
      ['drop', 3, 3, 983],
      ['c-1', 5, 11, 403],
      ['bench-open-1', 2, 2, 658],
      ['캠페인', 4, 10, 130],
    ];
    // asked twice: the remembered hash gives what the first answer did
    for (let round = 0; round < 2; round++)
      for (const [id, of6, of12, of1000] of vectors)
        expect([partitionFor(id, 6), partitionFor(id, 12), partitionFor(id, 1000)], id).toEqual([of6, of12, of1000]);
  });

  it('stays the same after the memory of hashes is full and starts over', () => {
    const sha1 = (id: string, n: number) => createHash('sha1').update(id).digest().readUInt32BE(0) % n;
    for (let i = 0; i < 25_000; i += 7) expect(partitionFor(`c-${i}`, 12)).toBe(sha1(`c-${i}`, 12));
    expect(partitionFor('drop', 12)).toBe(3);
  });
});
