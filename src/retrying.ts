import { describeError } from './health.js';
import type { Logger } from './logger.js';

/**
 * How a failing component waits and what it says: exponential backoff with a cap, and the same
 * error logged once per minute with a count instead of once per attempt (a projector whose table
 * was gone wrote 26 error lines in 17 s).
 */

export const BACKOFF = { firstMs: 500, capMs: 30_000 } as const;

/** The wait before attempt `n + 1` after `n` failures in a row (n ≥ 1), ±20% so members spread out. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF.capMs, BACKOFF.firstMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(Math.min(BACKOFF.capMs, base * (0.8 + 0.4 * random())));
}

export const REPEAT_WINDOW_MS = 60_000;

/**
 * Decides which occurrences of a repeated error are logged: the first, then the first one after
 * each window, carrying how many were held back since the last line.
 */
export class RepeatFilter {
  private readonly seen = new Map<string, { loggedAt: number; held: number }>();

  constructor(
    private readonly windowMs = REPEAT_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** null: stay quiet; otherwise log, saying `held` occurrences were not logged since the last line */
  admit(key: string): { held: number } | null {
    const t = this.now();
    const s = this.seen.get(key);
    if (s && t - s.loggedAt < this.windowMs) {
      s.held++;
      return null;
    }
    this.seen.set(key, { loggedAt: t, held: 0 });
    if (this.seen.size > 1000) this.seen.delete(this.seen.keys().next().value!);
    return { held: s?.held ?? 0 };
  }

  /** Occurrences held back under `key` that no line has told yet; forgets the key. */
  settle(key: string): number {
    const held = this.seen.get(key)?.held ?? 0;
    this.seen.delete(key);
    return held;
  }
}

/** A logger for one component's repeated failures. */
export class RepeatedErrors {
  private readonly filter: RepeatFilter;
  private lastKey: string | null = null;

  constructor(
    private readonly log: Logger,
    private readonly level: 'warn' | 'error' = 'error',
    windowMs?: number,
  ) {
    this.filter = new RepeatFilter(windowMs);
  }

  error(err: unknown, msg: string, extra: Record<string, unknown> = {}): void {
    const key = `${msg}\n${describeError(err).replace(/\d+/g, '#')}`;
    this.lastKey = key;
    const pass = this.filter.admit(key);
    if (!pass) return;
    if (pass.held === 0) this.log[this.level]({ err, ...extra }, msg);
    else this.log[this.level]({ err, ...extra, repeated: pass.held + 1 }, `${msg} (${pass.held + 1} times in the last minute)`);
  }

  /** The component works again: say so once, with how many failures went unlogged. */
  recovered(msg: string, extra: Record<string, unknown> = {}): void {
    if (this.lastKey === null) return;
    const held = this.filter.settle(this.lastKey);
    this.lastKey = null;
    this.log.info({ ...extra, ...(held ? { unlogged: held } : {}) }, msg);
  }
}

/** Sleeps `ms`, waking early when `until()` turns true (checked every `stepMs`, after `each()`). */
export async function pause(ms: number, opts: { until?: () => boolean; each?: () => Promise<void>; stepMs?: number } = {}): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(opts.stepMs ?? 1000, end - Date.now())));
    await opts.each?.();
    if (opts.until?.()) return;
  }
}
