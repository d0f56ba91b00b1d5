import type { RedisOrdering } from './reads.js';

/**
 * The sockets each user holds open, counted across every API process: a sorted set per user of
 * socket id → the end of its lease. A process renews the leases of its sockets while they are open
 * and takes each back when it closes; a process that dies stops renewing, and its places free
 * themselves within one lease.
 */
export class SocketLeases {
  constructor(
    private readonly o: RedisOrdering,
    readonly leaseMs = 30_000,
  ) {}

  /** true when the socket got a place (fewer than `most` open for the user) */
  async acquire(userId: string, socketId: string, most: number): Promise<boolean> {
    return (await this.o.redis.fcSocketAcquire(this.o.keys.socketsOf(userId), socketId, Date.now(), this.leaseMs, most)) === 1;
  }

  async release(userId: string, socketId: string): Promise<void> {
    await this.o.redis.zrem(this.o.keys.socketsOf(userId), socketId);
  }

  /** Renews the leases of the sockets still open here (one command each, pipelined by ioredis). */
  async renew(open: Iterable<[userId: string, socketId: string]>): Promise<void> {
    const until = Date.now() + this.leaseMs;
    await Promise.all(
      [...open].map(async ([userId, socketId]) => {
        const key = this.o.keys.socketsOf(userId);
        await this.o.redis.zadd(key, 'XX', until, socketId);
        await this.o.redis.pexpire(key, this.leaseMs);
      }),
    );
  }
}
