import type { ChainableCommander } from 'ioredis';
import { createSubscriberOf, isCluster, type RedisClient } from './client.js';

/**
 * Pub/sub on either shape of Redis. One Redis: PUBLISH / SUBSCRIBE. A cluster: sharded pub/sub
 * (SPUBLISH / SSUBSCRIBE, Redis 7), where a channel lives on the primary of its slot like a key:
 * a message crosses no cluster bus, and a campaign's channel, tagged like its keys, sits on the
 * campaign's node. Messages are not kept: a subscriber that was away misses them (`onResubscribed`).
 */
export class ChannelSubscriber {
  private constructor(
    private readonly sub: RedisClient,
    private readonly sharded: boolean,
  ) {}

  /** A subscriber connection beside `redis` (its own: a subscribing connection takes no other command). */
  static of(redis: RedisClient): ChannelSubscriber {
    return new ChannelSubscriber(createSubscriberOf(redis), isCluster(redis));
  }

  onMessage(fn: (channel: string, body: string) => void): void {
    this.sub.on(this.sharded ? 'smessage' : 'message', fn);
  }

  /** `fn` after the subscriptions were made again on a new connection (a reconnect, a failover): what was published meanwhile is lost. */
  onResubscribed(fn: () => void): void {
    let first = true;
    this.sub.on(this.sharded ? 'subscribersReady' : 'ready', () => {
      if (first) first = false;
      else fn();
    });
  }

  /** One Redis only (a cluster's subscriber is many connections): answered after every message delivered before it. */
  async ping(): Promise<void> {
    if (this.sharded) throw new Error('a PING orders nothing across the sharded subscribers of a cluster');
    await this.sub.ping();
  }

  subscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel);
  }

  unsubscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.sub.sunsubscribe(channel) : this.sub.unsubscribe(channel);
  }

  async quit(): Promise<void> {
    await this.sub.quit().catch(() => undefined);
  }
}

/** One publish of `body` on `channel`, sharded on a cluster. */
export async function publish(redis: RedisClient, channel: string, body: string): Promise<void> {
  await (isCluster(redis) ? redis.spublish(channel, body) : redis.publish(channel, body));
}

/** Queues one publish of `body` on `channel`, sharded on a cluster. */
export function queuePublish(pipe: ChainableCommander, redis: RedisClient, channel: string, body: string): void {
  if (isCluster(redis)) pipe.spublish(channel, body);
  else pipe.publish(channel, body);
}
