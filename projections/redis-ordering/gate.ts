import { parseGate, type GateAnswer } from './answers.js';
import type { PartitionRef, RedisOrdering } from './reads.js';
import { confirmAbsent } from './rebuild.js';

/**
 * The gate of `enter` (lookup.lua) and the user's append claim around it: one round trip tells
 * whether the campaign is there, whether the user has a place or a pending ticket, and takes the
 * claim when a place may be left. The rules themselves are the domain's (`admit`).
 */
export class EnterGate {
  constructor(private readonly o: RedisOrdering) {}

  /** `count` is false when the same call asks again, so `requests` counts calls, not lookups. */
  async check(campaignId: string, userId: string, claimToken: string, claimTtlMs: number, where: PartitionRef, count: boolean): Promise<GateAnswer> {
    const k = this.o.keys;
    for (let look = 0; look < 3; look++) {
      // read first: the writer publishes it after its writes, so a campaign below it lost them
      const seq = await this.o.writerSeq(campaignId, where);
      const r = parseGate(await this.o.redis.fcLookup(k.meta(campaignId), k.line(campaignId), k.pending(campaignId), k.claim(campaignId, userId), userId, claimToken, claimTtlMs, count ? '1' : '0', String(seq)));
      if (r.kind !== 'absent') return r;
      // a campaign not there was not counted either: looking again counts it once
      const absent = await confirmAbsent(this.o, where, campaignId);
      if (absent !== 'present') return { kind: absent };
    }
    // created or rebuilt between every look: it is on its way
    return { kind: 'building' };
  }

  /** After the append: the user's ticket is known, the claim is no longer needed. */
  async markPending(campaignId: string, userId: string, ticket: string): Promise<void> {
    const k = this.o.keys;
    // no MULTI needed: should the process die in between, the claim expires by itself
    await Promise.all([this.o.redis.hsetnx(k.pending(campaignId), userId, ticket), this.o.redis.del(k.claim(campaignId, userId))]);
  }

  async releaseClaim(campaignId: string, userId: string): Promise<void> {
    await this.o.redis.del(this.o.keys.claim(campaignId, userId));
  }
}
