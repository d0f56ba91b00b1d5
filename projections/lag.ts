import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../src/logger.js';

/**
 * How far a projection is behind the log, per partition: high watermark − next offset to apply.
 * Logged when it becomes notable (and again when it is made up), offered to /metrics as
 * `firstcome_projector_lag{projection,partition}`.
 */
export const LAG_METRIC = 'firstcome_projector_lag';
/** below this many events a projector is merely busy, not behind */
const NOTABLE = 1000;
const LOG_EVERY_MS = 5000;

export class Lag {
  private readonly high = new Map<number, bigint>();
  private readonly next = new Map<number, bigint>();
  private behind = false;
  private loggedAt = 0;

  constructor(
    readonly projection: string,
    private readonly log: Logger,
  ) {}

  observe(partition: number, at: { high?: bigint | string; next?: bigint }): void {
    if (at.high !== undefined) {
      const h = BigInt(at.high);
      if (h > (this.high.get(partition) ?? -1n)) this.high.set(partition, h);
    }
    if (at.next !== undefined) this.next.set(partition, at.next);
    this.report();
  }

  /** Only assigned partitions count; another member reports the others. */
  retain(partitions: readonly number[]): void {
    for (const p of [...this.next.keys(), ...this.high.keys()]) {
      if (!partitions.includes(p)) {
        this.next.delete(p);
        this.high.delete(p);
      }
    }
  }

  of(partition: number): number {
    const h = this.high.get(partition);
    const n = this.next.get(partition);
    if (h === undefined || n === undefined) return 0;
    return h > n ? Number(h - n) : 0;
  }

  partitions(): number[] {
    return [...this.next.keys()].sort((a, b) => a - b);
  }

  total(): number {
    return this.partitions().reduce((sum, p) => sum + this.of(p), 0);
  }

  private report(): void {
    const total = this.total();
    const now = Date.now();
    if (total >= NOTABLE && now - this.loggedAt >= LOG_EVERY_MS) {
      this.behind = true;
      this.loggedAt = now;
      const byPartition = Object.fromEntries(this.partitions().map((p) => [p, this.of(p)]));
      this.log.info({ projection: this.projection, lag: total, byPartition }, 'projection is behind the log');
    } else if (total === 0 && this.behind) {
      this.behind = false;
      this.loggedAt = 0;
      this.log.info({ projection: this.projection }, 'projection caught up with the log');
    }
  }
}

/** One gauge for every projection of the process (a registry takes a metric name once). */
export function registerLagGauge(registry: Registry, lags: readonly Lag[]): void {
  if (registry.getSingleMetric(LAG_METRIC)) registry.removeSingleMetric(LAG_METRIC);
  new Gauge({
    name: LAG_METRIC,
    help: 'events a projection is behind the log (high watermark - next offset), per partition',
    labelNames: ['projection', 'partition'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const lag of lags) for (const p of lag.partitions()) this.set({ projection: lag.projection, partition: String(p) }, lag.of(p));
    },
  });
}
