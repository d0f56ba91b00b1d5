import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RedisClient } from '../../projections/redis-ordering/index.js';

/**
 * A per-second budget of points per identity (a user, an address), kept in Redis with
 * rate-limiter-flexible, so that every API process spends from the same one.
 *
 * - A fixed one-second window per identity: nobody waits longer than the window for a cheap
 *   request, and a debt (see `charge`) blocks the identity for as many windows as it covers.
 * - The in-process first stage is rate-limiter-flexible's in-memory block: once an identity's
 *   window is spent, this process refuses it without asking Redis until the window ends. It only
 *   refuses what Redis would refuse, so it is never looser than the shared budget.
 * - When Redis cannot be reached, `onRedisLoss` says what happens: `local` spends from a budget of
 *   the same size kept in this process (N processes give N budgets while Redis is away; the edge
 *   stays up), `refuse` throws (the caller answers UNAVAILABLE).
 */
export class Budget {
  private readonly limiter: RateLimiterRedis;
  /** points taken from Redis and not spent yet, per identity, until the window that granted them ends */
  private readonly leases = new Map<string, { left: number; until: number }>();
  private readonly asking = new Map<string, Promise<unknown>>();

  /**
   * `lease`: points taken from Redis at a time, spent here until the window ends. For an identity
   * that sends many requests (every request of an address behind a proxy): one Redis round trip per
   * `lease` requests. Points leased and not spent are lost, so a lease can only make it stricter.
   */
  constructor(
    redis: RedisClient,
    keyPrefix: string,
    readonly perSec: number,
    onRedisLoss: 'local' | 'refuse',
    private readonly lease = 1,
  ) {
    this.limiter = new RateLimiterRedis({
      storeClient: redis,
      keyPrefix,
      points: perSec,
      duration: 1,
      inMemoryBlockOnConsumed: perSec,
      rejectIfRedisNotReady: true,
      insuranceLimiter: onRedisLoss === 'local' ? new RateLimiterMemory({ points: perSec, duration: 1 }) : undefined,
    });
  }

  /** 0 when `points` were taken from `identity`'s budget, else the milliseconds until it can spend again. */
  async take(identity: string, points = 1): Promise<number> {
    if (this.lease > 1) return this.takeLeased(identity, points);
    try {
      await this.limiter.consume(identity, points);
      return 0;
    } catch (res) {
      if (res instanceof RateLimiterRes) return Math.max(1, res.msBeforeNext);
      throw res;
    }
  }

  private async takeLeased(identity: string, points: number): Promise<number> {
    for (;;) {
      const held = this.leases.get(identity);
      if (held && held.until > Date.now() && held.left >= points) {
        held.left -= points;
        return 0;
      }
      const inFlight = this.asking.get(identity);
      if (!inFlight) break;
      await inFlight.catch(() => undefined);
    }
    const asked = this.askLease(identity, Math.max(points, this.lease));
    this.asking.set(identity, asked);
    try {
      const granted = await asked;
      if (granted.points < points) return Math.max(1, granted.until - Date.now());
      this.leases.set(identity, { left: granted.points - points, until: granted.until });
      if (this.leases.size > 10_000) this.forgetSpent();
      return 0;
    } finally {
      this.asking.delete(identity);
    }
  }

  /** Up to `want` points of the identity's window (fewer where the window had fewer left), and when the window ends. */
  private async askLease(identity: string, want: number): Promise<{ points: number; until: number }> {
    const now = Date.now();
    try {
      const res = await this.limiter.consume(identity, want);
      return { points: want, until: now + res.msBeforeNext };
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      // the part of the lease that fit under the window's budget is granted; the rest was over it.
      // A refusal from the in-memory block (no Redis asked) says nothing of what fits: none.
      const fit = res.consumedPoints > this.perSec ? this.perSec - (res.consumedPoints - want) : 0;
      return { points: Math.max(0, Math.min(want, fit)), until: now + res.msBeforeNext };
    }
  }

  private forgetSpent() {
    const now = Date.now();
    for (const [identity, l] of this.leases) if (l.until <= now) this.leases.delete(identity);
  }

  /**
   * Spends `points` before costly work whose size is known ahead (a long body to parse), granted
   * only when the identity's window was not already overspent by others' prepayments: of a burst of
   * costly requests on many connections one goes ahead, not one per connection. Returns 0, or the
   * milliseconds to wait. A refused prepayment is kept: a body sent while its sender is in debt is
   * a flood, and giving points back could undo the block of the one that went ahead.
   */
  async prepay(identity: string, points: number): Promise<number> {
    if (points <= 0) return 0;
    try {
      const res = await this.limiter.penalty(identity, points);
      if (res.consumedPoints - points > this.perSec) return Math.max(1, res.msBeforeNext);
      const debt = res.consumedPoints - this.perSec;
      if (debt > 0) await this.limiter.block(identity, Math.ceil(debt / this.perSec));
      return 0;
    } catch {
      return 0; // Redis lost for a moment: the request goes on, as a `take` from the local budget let it
    }
  }

  /** Gives back points prepaid for work that was not needed (a document Apollo had cached). */
  async refund(identity: string, points: number): Promise<void> {
    if (points <= 0) return;
    await this.limiter.reward(identity, points).catch(() => undefined);
  }

  /**
   * Spends `points` after the work is done (a document parsed and validated for the first time).
   * What goes beyond this window's budget is a debt: the identity is blocked for the windows it
   * covers, so an expensive request costs its sender as many seconds as it is worth.
   */
  async charge(identity: string, points: number): Promise<void> {
    if (points <= 0) return;
    try {
      const res = await this.limiter.penalty(identity, points);
      const debt = res.consumedPoints - this.perSec;
      if (debt > 0) await this.limiter.block(identity, Math.ceil(debt / this.perSec));
    } catch {
      // a charge is best effort: Redis lost for a moment loses a charge, never a request
    }
  }
}
