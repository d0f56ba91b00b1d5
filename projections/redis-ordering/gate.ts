import { parseGate, type GateAnswer } from './answers.js';
import { changesChannelOf } from './changes.js';
import { isCluster } from './client.js';
import type { PartitionRef, RedisOrdering } from './reads.js';
import { confirmAbsent } from './rebuild.js';
import { SlotPipelines } from './slots.js';

/**
 * The gate of `enter` (lookup.lua) and the user's append claim around it: one round trip tells
 * whether the campaign is there, whether the user has a place or a pending ticket, and takes the
 * claim when a place may be left. The rules themselves are the domain's (`admit`).
 */
export class EnterGate {
  /** tickets to mark, gathered over one turn of the event loop (see `markPending`) */
  private marks: { campaignId: string; userId: string; ticket: string; done: (err: Error | null) => void }[] = [];

  constructor(private readonly o: RedisOrdering) {}

  /**
   * `count` is false when the same call asks again, so `requests` counts calls, not lookups.
   * `solved`: the call carries a proof-of-work solution; without one, a campaign that asks for it
   * answers `new` with no claim taken.
   */
  async check(
    campaignId: string,
    userId: string,
    claimToken: string,
    claimTtlMs: number,
    where: PartitionRef,
    count: boolean,
    solved = false,
  ): Promise<GateAnswer> {
    const k = this.o.keys;
    const c = count ? '1' : '0';
    const s = solved ? '1' : '0';
    // One Redis holds the writer's step counts beside the campaign: the script reads both at once,
    // in one round trip. Each round trip of a crowd's `enter` waits for this thread's event loop
    // too (~12 ms under load here), so a second one cost more in latency than in CPU.
    const one = !isCluster(this.o.redis);
    for (let look = 0; look < 3; look++) {
      const r = parseGate(
        one
          ? await this.o.redis.fcLookupWithSeq(
              k.meta(campaignId),
              k.line(campaignId),
              k.pending(campaignId),
              k.claim(campaignId, userId),
              k.seqs(where.topic, where.partition),
              userId,
              claimToken,
              claimTtlMs,
              c,
              campaignId,
              s,
            )
          : // on a cluster the counts are another slot's: read first, as the writer publishes
            // them after its writes, so a campaign below the count read lost them
            await this.o.redis.fcLookup(
              k.meta(campaignId),
              k.line(campaignId),
              k.pending(campaignId),
              k.claim(campaignId, userId),
              userId,
              claimToken,
              claimTtlMs,
              c,
              String(await this.o.writerSeq(campaignId, where)),
              s,
            ),
      );
      if (r.kind !== 'absent') return r;
      // a campaign not there was not counted either: looking again counts it once
      const absent = await confirmAbsent(this.o, where, campaignId);
      if (absent !== 'present') return { kind: absent };
    }
    // created or rebuilt between every look: it is on its way
    return { kind: 'building' };
  }

  /**
   * After the append: the user's ticket is known, the claim is no longer needed. The appender
   * acknowledges a whole group commit at once, so the marks of one turn of the event loop go out
   * together: one call of lua/mark.lua per campaign, in one pipeline (one per slot on a cluster).
   * Once a campaign's line is full, the same call announces the marked users on its change channel
   * (what src/api/soldOut.ts needs to answer a sold-out crowd from memory).
   * Two commands per entry (HSETNX, DEL) cost the API thread about twice as much CPU per entry
   * (20,000 entries in batches of 20 against the local Redis, on the loaded 2-core machine: 27–48
   * µs an entry as two commands, 15–31 µs as one call per batch).
   */
  markPending(campaignId: string, userId: string, ticket: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.marks.push({ campaignId, userId, ticket, done: (err) => (err ? reject(err) : resolve()) });
      if (this.marks.length === 1) setImmediate(() => this.sendMarks());
    });
  }

  private sendMarks(): void {
    const byCampaign = new Map<string, typeof this.marks>();
    for (const m of this.marks) {
      const of = byCampaign.get(m.campaignId);
      if (of) of.push(m);
      else byCampaign.set(m.campaignId, [m]);
    }
    this.marks = [];
    const k = this.o.keys;
    // no MULTI needed: should the process die in between, the claim expires by itself. A turn's
    // marks may span campaigns, so on a cluster they go as one pipeline per slot (slots.ts)
    const pipes = new SlotPipelines(this.o.redis);
    const groups = [...byCampaign.values()];
    const sharded = isCluster(this.o.redis) ? '1' : '0';
    for (const marks of groups) {
      const c = marks[0]!.campaignId;
      const claims = marks.map((m) => k.claim(c, m.userId));
      pipes
        .on(k.pending(c))
        .fcMark(
          3 + marks.length,
          [k.pending(c), k.meta(c), k.line(c), ...claims],
          [changesChannelOf(this.o, c), sharded, c, ...marks.flatMap((m) => [m.userId, m.ticket])],
        );
    }
    pipes.exec().then(
      (results) => groups.forEach((marks, i) => marks.forEach((m) => m.done(results[i]?.[0] ?? null))),
      (err: Error) => groups.forEach((marks) => marks.forEach((m) => m.done(err))),
    );
  }

  /** Keeps this request's claim from expiring until the returned stop is called (lua/holdClaim.lua). */
  holdClaim(campaignId: string, userId: string, claimToken: string, claimTtlMs: number): () => void {
    const claim = this.o.keys.claim(campaignId, userId);
    const timer = setInterval(
      () => void this.o.redis.fcHoldClaim(claim, claimToken, claimTtlMs).catch(() => undefined),
      Math.max(100, claimTtlMs / 3),
    );
    return () => clearInterval(timer);
  }

  async releaseClaim(campaignId: string, userId: string): Promise<void> {
    await this.o.redis.del(this.o.keys.claim(campaignId, userId));
  }

  /**
   * Spends a proof-of-work solution, named by its challenge: true the first time, false ever after
   * (until `ttlMs`, by when the challenge has expired). One SET NX that every API process shares.
   */
  async spendSolution(campaignId: string, challenge: string, ttlMs: number): Promise<boolean> {
    return (await this.o.redis.set(this.o.keys.solution(campaignId, challenge), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
  }

  /** Gives a spent solution back, when the entry it paid for was never appended (the caller may try it again). */
  async refundSolution(campaignId: string, challenge: string): Promise<void> {
    await this.o.redis.del(this.o.keys.solution(campaignId, challenge));
  }
}
