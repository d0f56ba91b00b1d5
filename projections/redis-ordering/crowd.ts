import { parseCrowdTurn, type CrowdTurn } from './answers.js';
import { ChannelSubscriber } from './channels.js';
import { changesChannelOf } from './changes.js';
import { isCluster } from './client.js';
import type { PartitionRef } from './keys.js';
import type { RedisOrdering } from './reads.js';

/**
 * What an API process needs of Redis to answer a sold-out crowd from memory (src/api/soldOut.ts):
 * the campaign's change channel (mark.lua announces there every user marked once the line is full,
 * the writer every user it placed), a barrier on that subscription, every user pending or in line
 * read once, and one counting call per turn of answers (lua/crowdTurn.lua).
 */
export class CrowdReads {
  readonly subscriber: ChannelSubscriber;

  private constructor(private readonly o: RedisOrdering) {
    this.subscriber = ChannelSubscriber.of(o.redis);
  }

  /**
   * None on a Redis Cluster: there the subscription is spread over sharded subscribers, and a PING
   * on one of them orders nothing against the campaign's channel (the crowd then goes to the gate).
   */
  static of(o: RedisOrdering): CrowdReads | null {
    return isCluster(o.redis) ? null : new CrowdReads(o);
  }

  channel(campaignId: string): string {
    return changesChannelOf(this.o, campaignId);
  }

  /**
   * Resolves once every message published before it was handed to the subscriber's listeners: Redis
   * answers a PING on a subscribed connection in order with the messages it delivers there.
   */
  async barrier(): Promise<void> {
    await this.subscriber.ping();
  }

  /**
   * Every user pending or in line, in chunks, to be read after the channel is subscribed: a user
   * marked later is announced, a pending one placed meanwhile is in the line read after the pending
   * tickets. 'moved' when the partition was rebuilt, or the campaign was behind its writer or
   * being rebuilt, at either end of the read: what was read may miss entrants, so it is not used.
   */
  async entrants(campaignId: string, where: PartitionRef, each: (users: string[]) => void): Promise<'read' | 'moved'> {
    const k = this.o.keys;
    const state = async () => {
      const [built, expected, meta] = await Promise.all([
        this.o.redis.get(k.built(where.topic, where.partition)),
        this.o.redis.hget(k.seqs(where.topic, where.partition), campaignId),
        this.o.redis.hmget(k.meta(campaignId), 'stock', 'building', 'seq'),
      ]);
      const [stock, building, seq] = meta;
      const whole = built !== null && stock !== null && building === null && Number(seq ?? 0) >= Number(expected ?? 0);
      return whole ? built : null;
    };
    const before = await state();
    if (before === null) return 'moved';
    let cursor = '0';
    do {
      const [next, fields] = await this.o.redis.hscan(k.pending(campaignId), cursor, 'COUNT', 1000);
      each(fields.filter((_, i) => i % 2 === 0));
      cursor = next;
    } while (cursor !== '0');
    do {
      const [next, members] = await this.o.redis.zscan(k.line(campaignId), cursor, 'COUNT', 1000);
      each(members.filter((_, i) => i % 2 === 0));
      cursor = next;
    } while (cursor !== '0');
    return (await state()) === before ? 'read' : 'moved';
  }

  /** How many users are in line now (what the memory is sized for). */
  lineSize(campaignId: string): Promise<number> {
    return this.o.redis.zcard(this.o.keys.line(campaignId));
  }

  /** One turn's `calls` counted as the gate counts them, and the campaign's close as it stands. */
  async turn(campaignId: string, calls: number, where: PartitionRef): Promise<CrowdTurn> {
    const k = this.o.keys;
    return parseCrowdTurn(await this.o.redis.fcCrowdTurn(k.meta(campaignId), k.seqs(where.topic, where.partition), calls, campaignId));
  }
}
