import { randomUUID } from 'node:crypto';
import { admit, type Rejection } from '../domain/campaign.js';
import { judgeSolution, type ChallengeRejection, type ChallengeSetting } from '../domain/challenge.js';
import { entrantRegistered, ticketOf } from '../domain/events.js';
import type { Reply } from '../writer/replies.js';
import type { EventAppender } from '../infra/kafka/appender.js';
import { partitionFor } from '../infra/kafka/partitioning.js';
import type { ChannelSubscriber, EnterGate, EntryView, PartitionRef, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { logger } from '../logger.js';
import type { Timing } from '../metrics.js';
import type { PowChallenges } from './challenge.js';
import { notFound, unavailable } from './errors.js';
import type { CrowdAnswer, SoldOutCrowd } from './soldOut.js';

const log = logger.child({ component: 'enter' });

export type EnterResult = { entry: EntryView } | { rejection: Rejection | ChallengeRejection };

/** Waiting `enter` calls of this process, answered by the single writer on this process's own channel. */
export class ReplyWaiter {
  private readonly waiting = new Map<string, (r: Reply) => void>();
  private constructor(private readonly sub: ChannelSubscriber) {}

  static async listen(subscriber: ChannelSubscriber, channel: string): Promise<ReplyWaiter> {
    const w = new ReplyWaiter(subscriber);
    subscriber.onMessage((_ch, body) => {
      for (const r of JSON.parse(body) as Reply[]) {
        w.waiting.get(r.request)?.(r);
      }
    });
    await subscriber.subscribe(channel);
    return w;
  }

  /** Registers before the append, so a fast decision cannot slip past. */
  expect(request: string, timeoutMs: number): Promise<Reply | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(request);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(request, (r) => {
        clearTimeout(timer);
        this.waiting.delete(request);
        resolve(r);
      });
    });
  }

  cancel(request: string): void {
    this.waiting.delete(request);
  }

  get size(): number {
    return this.waiting.size;
  }

  async close(): Promise<void> {
    await this.sub.quit();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The write path of `enter`: a gate in Redis (one Lua round trip), a claim so that one request of a
 * user appends at a time, the append (group-committed), then the wait for the decision.
 */
export class EnterService {
  readonly stats = { appended: 0, rejected: 0, duplicates: 0, queued: 0 };
  timing: Timing = () => undefined;

  constructor(
    private readonly ordering: RedisOrdering,
    private readonly gate: EnterGate,
    private readonly appender: EventAppender,
    private readonly waiter: ReplyWaiter,
    private readonly challenges: PowChallenges,
    private readonly opts: {
      instance: string;
      topic: string;
      partitions: number;
      waitMs: number;
      claimTtlMs?: number;
      /** answers the fresh users of a campaign known sold out in this process (soldOut.ts) */
      crowd?: SoldOutCrowd | null;
    },
  ) {}

  /** The crowd memory's answer alone (soldOut.ts), counted when SOLD_OUT; `enter` takes it as `asked`. */
  async fromMemory(campaignId: string, userId: string): Promise<CrowdAnswer> {
    const known = (await this.opts.crowd?.answer(campaignId, userId, Date.now())) ?? null;
    if (known === 'SOLD_OUT') this.stats.rejected++;
    return known;
  }

  /**
   * CONTRACT.md's order: the campaign's own rejections first; a user already in line gets their
   * entry back, solution or not; anyone else, where the campaign asks for proof of work, needs a
   * `solution` that holds and was never used (checked only once the user holds the append claim,
   * so a second click waits for the first instead of spending a solution). Nothing is appended
   * for a refused one.
   */
  async enter(
    campaignId: string,
    userId: string,
    solution: string | null = null,
    slow?: () => Promise<void>,
    asked?: CrowdAnswer,
  ): Promise<EnterResult> {
    const deadline = Date.now() + this.opts.waitMs;
    // a sold-out crowd answered in this process: no round trip of its own. `asked`: the memory's
    // answer, when the caller asked it already ('counted': the gate must not count the call again)
    const known = asked !== undefined ? asked : await this.fromMemory(campaignId, userId);
    if (known === 'SOLD_OUT') return { rejection: 'SOLD_OUT' };
    // the caller's `enter` budget (it throws RATE_LIMITED), spent by every call that goes on to the
    // gate. A SOLD_OUT from memory spends none: it costs no more than the request's own edge budget
    // pays for, and never reaches the gate or the log.
    await slow?.();
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const request = randomUUID();
      const where = this.partitionOf(campaignId);
      const count = attempt === 0 && known !== 'counted';
      const g = await this.gate.check(campaignId, userId, request, this.opts.claimTtlMs ?? 10_000, where, count, solution !== null);
      switch (g.kind) {
        case 'unknown':
          throw notFound('campaign');
        case 'building':
          throw unavailable();
        case 'placed':
        case 'pending':
          this.stats.duplicates++;
          return { entry: await this.settledEntry(campaignId, userId, deadline) };
        case 'new': {
          const rejection = admit(g.terms, now, g.taken);
          if (rejection) {
            if (rejection === 'SOLD_OUT') this.opts.crowd?.learn(campaignId, g.terms, where);
            if (g.claimed) await this.gate.releaseClaim(campaignId, userId);
            this.stats.rejected++;
            return { rejection };
          }
          // lookup.lua gives no claim to a call without the solution a campaign asks for
          if (judgeSolution(g.challenge, solution, null) === 'CHALLENGE_REQUIRED') {
            if (g.claimed) await this.gate.releaseClaim(campaignId, userId);
            this.stats.rejected++;
            return { rejection: 'CHALLENGE_REQUIRED' };
          }
          if (!g.claimed) {
            // another request of this user is appending right now: its ticket is ours too
            await sleep(10);
            continue;
          }
          const spent = await this.spend(g.challenge, solution, campaignId, userId, now);
          if (spent && 'rejection' in spent) {
            await this.gate.releaseClaim(campaignId, userId);
            this.stats.rejected++;
            return spent;
          }
          try {
            return await this.append(campaignId, userId, request, now, deadline);
          } catch (err) {
            // nothing was appended: the solution may pay for the caller's next try
            if (spent) await this.gate.refundSolution(campaignId, spent.challenge).catch(() => undefined);
            throw err;
          }
        }
        default: {
          const _exhaustive: never = g;
          return _exhaustive;
        }
      }
    }
  }

  /**
   * A POW campaign's solution checked and spent (one SET NX shared by every API process): the
   * challenge it solved, or the refusal. null when the campaign asks for none.
   */
  private async spend(
    setting: ChallengeSetting,
    solution: string | null,
    campaignId: string,
    userId: string,
    now: number,
  ): Promise<{ challenge: string } | { rejection: ChallengeRejection } | null> {
    if (setting.mode === 'OFF' || solution === null) return null;
    const checked = await this.challenges.check(solution, campaignId, userId, now);
    if ('fault' in checked) {
      this.challenges.stats.refused++;
      return { rejection: judgeSolution(setting, solution, checked.fault)! };
    }
    // kept a little past the expiry: a clock a second behind must not take it for new
    if (!(await this.gate.spendSolution(campaignId, checked.challenge, checked.expiresAt - now + 5_000))) {
      this.challenges.stats.reused++;
      return { rejection: judgeSolution(setting, solution, 'reused')! };
    }
    this.challenges.stats.solved++;
    return { challenge: checked.challenge };
  }

  /** partitionFor remembers each campaign's hash (src/infra/kafka/partitioning.ts) */
  private partitionOf(campaignId: string): PartitionRef {
    return { topic: this.opts.topic, partition: partitionFor(campaignId, this.opts.partitions) };
  }

  private async append(campaignId: string, userId: string, request: string, now: number, deadline: number): Promise<EnterResult> {
    const event = entrantRegistered(campaignId, userId, new Date(now), { instance: this.opts.instance, request });
    const waiting = performance.now();
    const decision = this.waiter.expect(request, Math.max(0, deadline - Date.now()));
    let ticket: string;
    // a second click of this user waits on the claim, however long the append takes
    const letGo = this.gate.holdClaim(campaignId, userId, request, this.opts.claimTtlMs ?? 10_000);
    try {
      const at = await this.appender.append(event);
      ticket = ticketOf(at.partition, at.offset);
    } catch (err) {
      this.waiter.cancel(request);
      await this.gate.releaseClaim(campaignId, userId).catch(() => undefined);
      log.error({ err, campaignId }, 'append failed');
      // nothing was acknowledged: the caller may simply try again
      throw unavailable(1000);
    } finally {
      letGo();
    }
    this.stats.appended++;
    // a second click finds the ticket from here on; the decision may already be on its way
    const [, reply] = await Promise.all([this.gate.markPending(campaignId, userId, ticket), decision]);
    this.timing('decision', (performance.now() - waiting) / 1000);
    if (reply?.kind === 'rejected') return { rejection: reply.rejection };
    const entry = { campaignId, userId, ticket, position: null, stock: 0, won: null, gifticon: null };
    if (reply === null) {
      // durable in the log, not decided yet: QUEUED, and myEntry tells the decision later
      this.stats.queued++;
      return { entry };
    }
    return { entry: { ...entry, ticket: reply.ticket, position: reply.position, stock: reply.stock } };
  }

  /** A repeated click: the same entry, with its decision once made (or QUEUED at the deadline). */
  private async settledEntry(campaignId: string, userId: string, deadline: number): Promise<EntryView> {
    for (;;) {
      const e = await this.ordering.entry(campaignId, userId);
      if (e === 'building' || e === 'unknown-campaign') throw unavailable();
      if (e && (e.position !== null || Date.now() >= deadline)) return e;
      if (!e && Date.now() >= deadline) throw unavailable();
      await sleep(20);
    }
  }
}
