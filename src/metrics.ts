import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** One registry per process; roles register what they can report. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'firstcome_' });
  const requests = new Histogram({
    name: 'firstcome_graphql_request_seconds',
    help: 'GraphQL requests by operation name',
    labelNames: ['operation', 'ok'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5],
    registers: [registry],
  });
  const gauge = (name: string, help: string, collect: () => number, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [registry], collect() { this.set(collect()); } });
  const counterFrom = (name: string, help: string, read: () => number) =>
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
  return { registry, requests, gauge, counterFrom };
}

export type Metrics = ReturnType<typeof createMetrics>;
