import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BreakerState, ProviderEvents } from './client.js';

/**
 * The provider client's events as Prometheus metrics. Labels are fixed sets (outcomes, reasons,
 * states): no key, no campaign, no code ever becomes a label.
 */

const STATES: BreakerState[] = ['closed', 'open', 'half-open'];

export function providerMetrics(registry: Registry): ProviderEvents {
  const calls = new Counter({
    name: 'firstcome_provider_calls_total',
    help: 'calls to the gifticon provider by outcome: issued, permanent, or the transient reason (timeout, connection, server, rate-limited, conflict, request-timeout, bad-answer)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const seconds = new Histogram({
    name: 'firstcome_provider_call_seconds',
    help: 'time of one provider call, answered or not',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'firstcome_provider_retries_total',
    help: 'provider calls made again after a transient answer',
    registers: [registry],
  });
  const issuances = new Counter({
    name: 'firstcome_provider_issuances_total',
    help: 'vouchers asked for, by how it ended: issued, permanent (a 4xx answer), exhausted (attempts or time budget spent)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const state = new Gauge({
    name: 'firstcome_provider_breaker_state',
    help: 'the provider circuit breaker: 1 for the state it is in (closed: calls flow; open: calls paused; half-open: one probe call)',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const opened = new Counter({
    name: 'firstcome_provider_breaker_opened_total',
    help: 'times the provider circuit breaker opened',
    registers: [registry],
  });
  for (const s of STATES) state.set({ state: s }, s === 'closed' ? 1 : 0);
  opened.inc(0);
  retries.inc(0);
  return {
    call(answer, s) {
      calls.inc({ outcome: answer.kind === 'transient' ? answer.reason : answer.kind });
      seconds.observe(s);
    },
    retry: () => retries.inc(),
    issuance: (kind) => issuances.inc({ result: kind }),
    breaker(now) {
      for (const s of STATES) state.set({ state: s }, s === now ? 1 : 0);
      if (now === 'open') opened.inc();
    },
  };
}
