import { setTimeout as sleep } from 'node:timers/promises';
import {
  BrokenCircuitError,
  bulkhead,
  circuitBreaker,
  CircuitState,
  ExponentialBackoff,
  fullJitterGenerator,
  handleWhenResult,
  SamplingBreaker,
  wrap,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type IBackoff,
  type IPolicy,
} from 'cockatiel';
import { RateLimiterMemory, RateLimiterQueue } from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import type { ProviderAdapter, ProviderAnswer, Voucher, VoucherRequest } from './provider.js';

/**
 * Calls the provider for one voucher until it is issued or given up, and keeps every issuer call
 * of the process inside the provider's limits. Each attempt takes a slot (PROVIDER_CONCURRENCY,
 * cockatiel's bulkhead), passes the circuit breaker (cockatiel's sampling breaker), then a token
 * (PROVIDER_RATE_PER_SEC, rate-limiter-flexible's queue), and only then reaches the adapter. Every
 * attempt carries the same idempotency key, so a retry after a timeout gets the voucher the
 * provider already issued instead of a second one.
 *
 * The attempt loop is written here rather than with cockatiel's retry policy because its budgets
 * are per voucher: attempts and time (PROVIDER_MAX_ATTEMPTS, PROVIDER_BUDGET_MS), `Retry-After` as a
 * floor under the backoff, and time paused behind an open breaker spending neither, so an outage
 * pauses issuance instead of parking every winner. Time queued for a slot or a token is not spent
 * either: in a drop of 20,000 winners at 500/s the last ones wait 40 s before their first call.
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export type IssueOutcome =
  | { kind: 'issued'; voucher: Voucher; attempts: number }
  /** the provider refused for good (a 4xx other than 408, 409, 429): park with its answer */
  | { kind: 'permanent'; status: number; answer: string; attempts: number }
  /** every attempt answered something transient, until the attempts or the time budget ran out: park */
  | { kind: 'exhausted'; why: 'attempts' | 'budget'; last: string; attempts: number };

/** What the client tells about its calls (src/issuer/metrics.ts turns it into metrics). */
export interface ProviderEvents {
  call(answer: ProviderAnswer, seconds: number): void;
  retry(): void;
  issuance(outcome: IssueOutcome['kind']): void;
  breaker(state: BreakerState): void;
}

export const quietEvents: ProviderEvents = {
  call: () => undefined,
  retry: () => undefined,
  issuance: () => undefined,
  breaker: () => undefined,
};

export interface ProviderClientOptions {
  ratePerSec: number;
  concurrency: number;
  timeoutMs: number;
  maxAttempts: number;
  budgetMs: number;
  /** full-jitter exponential backoff: the n-th retry waits a random time below min(capMs, firstMs·2ⁿ⁻¹) */
  backoff?: { firstMs: number; capMs: number };
  /**
   * The breaker opens when more than `threshold` of the calls of the last `windowMs` failed (timeouts,
   * connection errors, 5xx; not 429 or 4xx, which are answers), once at least `minCallsPerSec` came;
   * after `openMs` one probe call decides whether it closes.
   */
  breaker?: { threshold: number; windowMs: number; minCallsPerSec: number; openMs: number };
  events?: ProviderEvents;
}

export const BACKOFF_DEFAULTS = { firstMs: 200, capMs: 10_000 };
/**
 * 0.5 calls a second: 5 in the window, which one winner alone makes within ~3 s of backoff (200,
 * 400, 800, 1,600 ms at most). A drop's first batch may hold a single winner; at 2 a second (20
 * calls) the breaker never opened for it, and it spent its budget on a provider that was down.
 */
export const BREAKER_DEFAULTS = { threshold: 0.5, windowMs: 10_000, minCallsPerSec: 0.5, openMs: 5000 };

export function clientOptions(config: Config): ProviderClientOptions {
  return {
    ratePerSec: config.PROVIDER_RATE_PER_SEC,
    concurrency: config.PROVIDER_CONCURRENCY,
    timeoutMs: config.PROVIDER_TIMEOUT_MS,
    maxAttempts: config.PROVIDER_MAX_ATTEMPTS,
    budgetMs: config.PROVIDER_BUDGET_MS,
    breaker: { ...BREAKER_DEFAULTS, openMs: config.PROVIDER_BREAKER_OPEN_MS },
  };
}

/** A failing call for the breaker: the provider did not answer, or answered that it is failing. */
const failing = (a: ProviderAnswer) => a.kind === 'transient' && a.reason !== 'rate-limited' && a.reason !== 'conflict';

const STATES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
};

export class ProviderClient {
  private readonly slots: BulkheadPolicy;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly gate: IPolicy;
  private readonly tokens: RateLimiterQueue;
  private readonly backoff: ExponentialBackoff<number>;
  private readonly events: ProviderEvents;
  private readonly openMs: number;
  private readonly listeners = new Set<(s: BreakerState) => void>();

  constructor(
    private readonly adapter: ProviderAdapter,
    private readonly opts: ProviderClientOptions,
  ) {
    this.events = opts.events ?? quietEvents;
    const b = opts.breaker ?? BREAKER_DEFAULTS;
    this.openMs = b.openMs;
    this.slots = bulkhead(opts.concurrency, Number.MAX_SAFE_INTEGER);
    this.breaker = circuitBreaker(
      handleWhenResult((r) => failing(r as ProviderAnswer)),
      {
        halfOpenAfter: b.openMs,
        breaker: new SamplingBreaker({ threshold: b.threshold, duration: b.windowMs, minimumRps: b.minCallsPerSec }),
      },
    );
    this.gate = wrap(this.slots, this.breaker);
    this.breaker.onStateChange((s) => {
      const state = STATES[s];
      this.events.breaker(state);
      for (const l of this.listeners) l(state);
    });
    // a token bucket holding a tenth of a second's calls, refilled as a whole each tenth (fractional
    // windows of rate-limiter-flexible's memory limiter): over any second at most rate + rate/10 leave
    const burst = Math.max(1, Math.ceil(opts.ratePerSec / 10));
    this.tokens = new RateLimiterQueue(new RateLimiterMemory({ points: burst, duration: burst / opts.ratePerSec }));
    const { firstMs, capMs } = opts.backoff ?? BACKOFF_DEFAULTS;
    this.backoff = new ExponentialBackoff({ generator: fullJitterGenerator, initialDelay: firstMs, maxDelay: capMs });
  }

  get breakerState(): BreakerState {
    return STATES[this.breaker.state];
  }

  /** Called on every change of the breaker's state; returns the way to stop listening. */
  onBreaker(listener: (s: BreakerState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One winner's voucher: issued, refused for good, or given up after its budget. Throws only when `signal` aborts. */
  async issue(req: VoucherRequest, signal?: AbortSignal): Promise<IssueOutcome> {
    // the budget is the provider's time: calls and the waits between them, not a wait for a slot
    // or a token behind other winners, nor a pause behind an open breaker
    const spent = { ms: 0 };
    let attempts = 0;
    let backoff: IBackoff<unknown> | undefined;
    for (;;) {
      signal?.throwIfAborted();
      let answer: ProviderAnswer;
      try {
        answer = await this.gate.execute(() => this.attempt(req, spent, signal), signal);
      } catch (err) {
        if (!(err instanceof BrokenCircuitError)) throw err;
        // open: wait without spending an attempt or the budget; the first call after openMs probes
        const wait = this.openMs * (0.25 + Math.random() / 4);
        await sleep(wait, undefined, { signal });
        continue;
      }
      attempts++;
      if (answer.kind === 'issued') return this.done({ kind: 'issued', voucher: answer.voucher, attempts });
      if (answer.kind === 'permanent') return this.done({ kind: 'permanent', status: answer.status, answer: answer.answer, attempts });
      if (attempts >= this.opts.maxAttempts) return this.done({ kind: 'exhausted', why: 'attempts', last: answer.detail, attempts });
      backoff = backoff ? backoff.next(undefined) : this.backoff.next();
      const delay = Math.max(backoff.duration, answer.retryAfterMs ?? 0);
      if (spent.ms + delay > this.opts.budgetMs) {
        return this.done({ kind: 'exhausted', why: 'budget', last: answer.detail, attempts });
      }
      this.events.retry();
      await sleep(delay, undefined, { signal });
      spent.ms += delay;
    }
  }

  private async attempt(req: VoucherRequest, spent: { ms: number }, signal?: AbortSignal): Promise<ProviderAnswer> {
    await this.tokens.removeTokens(1);
    const t = performance.now();
    const answer = await this.adapter.requestVoucher(req, { timeoutMs: this.opts.timeoutMs, signal });
    const ms = performance.now() - t;
    spent.ms += ms;
    this.events.call(answer, ms / 1000);
    return answer;
  }

  private done(outcome: IssueOutcome): IssueOutcome {
    this.events.issuance(outcome.kind);
    return outcome;
  }
}
