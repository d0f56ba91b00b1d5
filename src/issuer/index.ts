import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { clientOptions, ProviderClient } from './client.js';
import { providerMetrics } from './metrics.js';
import { httpProvider } from './provider.js';

export { ProviderClient, type BreakerState, type IssueOutcome } from './client.js';
export type { Voucher, VoucherRequest } from './provider.js';

/** The process's one provider client, from the PROVIDER_* settings, with its metrics on `registry`. */
export function createProviderClient(config: Config, registry: Registry, log: Logger): ProviderClient {
  if (config.providerTokenIsDefault)
    log.warn('PROVIDER_TOKEN is not set: using the simulator development token (never with a real provider)');
  const client = new ProviderClient(
    httpProvider({ url: config.PROVIDER_URL, token: config.PROVIDER_TOKEN, maxSockets: config.PROVIDER_CONCURRENCY }),
    {
      ...clientOptions(config),
      events: providerMetrics(registry),
    },
  );
  client.onBreaker((state) => {
    if (state === 'open') log.warn({ provider: config.PROVIDER_URL }, 'provider failing: calls paused, a probe now and then');
    else if (state === 'closed') log.info({ provider: config.PROVIDER_URL }, 'provider answering again: calls resumed');
  });
  return client;
}
