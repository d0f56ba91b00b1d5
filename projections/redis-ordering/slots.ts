import type { ChainableCommander } from 'ioredis';
import { isCluster, type RedisClient } from './client.js';

/**
 * Many commands of many hash slots in one go. ioredis's Cluster client refuses a pipeline whose keys
 * span nodes, and a pipeline spanning slots of one node breaks as soon as a failover or a resharding
 * splits them, so on a cluster each slot gets its own pipeline; they are sent together, so each node
 * still answers in one round trip. On one Redis it is one pipeline, as before.
 */

/** What picks a key's slot (Redis Cluster's rule): the first non-empty `{tag}`, else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

export class SlotPipelines {
  private readonly groups = new Map<string, { pipe: ChainableCommander; at: number[] }>();
  private queued = 0;

  constructor(private readonly redis: RedisClient) {}

  /** The pipeline for ONE command whose keys (or shard channel) share `key`'s slot: queue exactly one on it. */
  readonly on = (key: string): ChainableCommander => {
    const group = isCluster(this.redis) ? hashTagOf(key) : '';
    let g = this.groups.get(group);
    if (!g) this.groups.set(group, (g = { pipe: this.redis.pipeline(), at: [] }));
    g.at.push(this.queued++);
    return g.pipe;
  };

  get length(): number {
    return this.queued;
  }

  /** Every pipeline at once; the replies in the order the commands were queued. A pipeline that failed as a whole fails each of its commands. */
  async exec(): Promise<[Error | null, unknown][]> {
    const out = new Array<[Error | null, unknown]>(this.queued);
    await Promise.all(
      [...this.groups.values()].map(async (g) => {
        try {
          const replies = (await g.pipe.exec()) ?? [];
          g.at.forEach((pos, i) => (out[pos] = replies[i] ?? [new Error('no reply from Redis'), null]));
        } catch (err) {
          g.at.forEach((pos) => (out[pos] = [err as Error, null]));
        }
      }),
    );
    return out;
  }
}

/** Every key matching `match` (SCAN, never KEYS), batch by batch; on a cluster, every primary's. */
export async function* scanKeys(redis: RedisClient, match: string): AsyncIterable<string[]> {
  const nodes = isCluster(redis) ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    for await (const batch of node.scanStream({ match, count: 1000 }) as AsyncIterable<string[]>) if (batch.length > 0) yield batch;
  }
}
