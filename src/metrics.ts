import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** How long a hot-path stage took, and for batches how many events it carried. */
export type Timing = (stage: 'append' | 'decide' | 'commit' | 'decision', seconds: number, size?: number) => void;

/**
 * The budgets in front of the work (src/api/edge.ts): every request per address (`ceiling`), requests
 * with no valid token per address (`ip`), the cost per user and per admin (HTTP 429), and `enter`
 * per user (RATE_LIMITED).
 */
export type RateLimitName = 'ceiling' | 'ip' | 'user' | 'admin' | 'enter';

/** What the edge turned away, by cause (a fixed set: see EdgeCause in src/api/edge.ts). */
export interface EdgeEvents {
  refused(cause: string): void;
  /** a sold-out `enter` answered with GraphQL's remembered reply (src/api/soldOutReplies.ts) */
  replayed?(): void;
}
export interface RateLimitEvents {
  /** the configured requests per second (0: off) */
  configure(limit: RateLimitName, perSec: number): void;
  refused(limit: RateLimitName): void;
}

/** A counter whose value is read from a source that counts by itself (e.g. a processor's stats). */
function counterOn(registry: Registry) {
  return (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = read();
        const have = (this as unknown as { hashMap: Record<string, { value: number }> }).hashMap['']?.value ?? 0;
        if (now > have) this.inc(now - have);
      },
    });
}

/** One registry per process; roles register what they can report. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'firstcome_' });
  const requests = new Histogram({
    name: 'firstcome_graphql_request_seconds',
    help: 'GraphQL requests by operation: the root field the request asked for first (a name of the schema), `invalid` for a document that did not validate',
    labelNames: ['operation', 'ok'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5],
    registers: [registry],
  });
  const stage = new Histogram({
    name: 'firstcome_stage_seconds',
    help: 'hot-path stages: append (one group commit), decide (one fetched batch), commit (its Kafka transaction), decision (an enter call waiting for its decision)',
    labelNames: ['stage'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3],
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'firstcome_batch_size',
    help: 'events per group commit (append) and per decided batch (decide)',
    labelNames: ['stage'] as const,
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
    registers: [registry],
  });
  const timing: Timing = (name, seconds, size) => {
    stage.observe({ stage: name }, seconds);
    if (size !== undefined) batchSize.observe({ stage: name }, size);
  };
  const gauge = (name: string, help: string, collect: () => number, labelNames: string[] = []) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.set(collect());
      },
    });
  const counterFrom = counterOn(registry);
  /** A counter per label value, read from a source that counts by itself (e.g. records parked per consumer). */
  const labeledCounterFrom = (name: string, help: string, label: string, read: () => Iterable<[string, number]>) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        const have = (this as unknown as { hashMap: Record<string, { value: number; labels: Record<string, string> }> }).hashMap;
        const seen = new Map(Object.values(have).map((v) => [v.labels[label], v.value]));
        for (const [value, now] of read()) {
          const before = seen.get(value) ?? 0;
          if (now > before) this.inc({ [label]: value }, now - before);
        }
      },
    });
  const refusedByLimit = new Counter({
    name: 'firstcome_rate_limited_total',
    help: 'requests refused by a budget: ceiling (every request per address), ip (per address, requests without a valid token), user and admin (cost per identity), all 429; enter (per user, RATE_LIMITED)',
    labelNames: ['limit'] as const,
    registers: [registry],
  });
  const limitPerSec = new Gauge({
    name: 'firstcome_rate_limit_per_sec',
    help: 'configured rate limits in requests per second (0: off)',
    labelNames: ['limit'] as const,
    registers: [registry],
  });
  const limits: RateLimitEvents = {
    configure(limit, perSec) {
      limitPerSec.set({ limit }, perSec);
      refusedByLimit.inc({ limit }, 0);
    },
    refused: (limit) => refusedByLimit.inc({ limit }),
  };
  const edgeRefused = new Counter({
    name: 'firstcome_edge_refused_total',
    help: 'requests and sockets the edge turned away before GraphQL, by cause (bad-target, client-error, foreign-origin, …)',
    labelNames: ['cause'] as const,
    registers: [registry],
  });
  const edgeReplayed = new Counter({
    name: 'firstcome_edge_sold_out_replayed_total',
    help: "sold-out enter calls the edge answered with GraphQL's remembered reply to the same request, without GraphQL",
    registers: [registry],
  });
  const edge: EdgeEvents = { refused: (cause) => edgeRefused.inc({ cause }), replayed: () => edgeReplayed.inc() };
  return { registry, requests, gauge, counterFrom, labeledCounterFrom, timing, limits, edge };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** What a role's read-side part registers: on the process's registry, or on its thread's own. */
export type ReadSideMetrics = Pick<Metrics, 'registry' | 'counterFrom'>;

/**
 * The read side thread's metrics (src/read-side/thread.ts): only what its processors register, no
 * process metrics, so its text follows the main thread's in /metrics without a family twice.
 */
export function createThreadMetrics(): ReadSideMetrics {
  const registry = new Registry();
  return { registry, counterFrom: counterOn(registry) };
}
