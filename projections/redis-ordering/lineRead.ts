import type { RedisOrdering } from './reads.js';

/**
 * A campaign's whole line, users by rank with their first log offsets: what the single writer reads
 * once to grow the campaign's Merkle tree again after a start or a rebuild (src/writer/lineHeads.ts).
 * One ZRANGE; the line of 20,000 entrants is about 0.5 MB on the wire.
 */
export async function readLine(o: RedisOrdering, campaignId: string): Promise<{ userId: string; offset: bigint }[]> {
  const flat = await o.redis.zrange(o.keys.line(campaignId), 0, -1, 'WITHSCORES');
  const out: { userId: string; offset: bigint }[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ userId: flat[i]!, offset: BigInt(Number(flat[i + 1])) });
  return out;
}
