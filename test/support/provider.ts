import { Registry } from 'prom-client';
import { ProviderClient, type IssueOutcome, type ProviderClientOptions } from '../../src/issuer/client.js';
import { providerMetrics } from '../../src/issuer/metrics.js';
import { httpProvider, type VoucherRequest } from '../../src/issuer/provider.js';
import { SIM_TOKEN, startProviderSim, type ProviderSim, type SimOptions } from '../../src/provider-sim/server.js';

/**
 * The provider simulator on a free port and a client in front of it, with fast backoff and its
 * own metrics registry: each test gets its own pair, so counts never mix.
 */
export async function simAndClient(sim: SimOptions, client: Partial<ProviderClientOptions> = {}, clientToken?: string) {
  const s = await startProviderSim({ latencyMs: 0, rate: 0, errorRate: 0, timeoutRate: 0, permanentRate: 0, ...sim });
  const registry = new Registry();
  const c = new ProviderClient(httpProvider({ url: s.url, token: clientToken ?? sim.token ?? SIM_TOKEN }), {
    ratePerSec: 1000,
    concurrency: 20,
    timeoutMs: 2000,
    maxAttempts: 20,
    budgetMs: 60_000,
    backoff: { firstMs: 20, capMs: 200 },
    events: providerMetrics(registry),
    ...client,
  });
  return { sim: s, client: c, registry };
}

/** The voucher request of the n-th winner of a test campaign. */
export const winner = (campaignId: string, n: number): VoucherRequest => ({
  idempotencyKey: `${campaignId}:winner:${n}`,
  product: 'chicken-10000',
  recipient: `user-${n}`,
  campaignId,
});

export async function issueAll(client: ProviderClient, reqs: VoucherRequest[]): Promise<IssueOutcome[]> {
  return Promise.all(reqs.map((r) => client.issue(r)));
}

export const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

export type { ProviderSim };
