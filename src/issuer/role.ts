import { CodeVault } from '../infra/codeKeys/vault.js';
import type { RoleContext, RoleHandle } from '../plugin.js';
import { createProviderClient } from './index.js';
import { Issuer } from './issuer.js';
import { logger } from '../logger.js';

/**
 * The `issuer` role: the provider's vouchers for the winners of PROVIDER campaigns (./issuer.ts),
 * through the process's one provider client (paced, retried, behind a breaker: ./client.ts).
 * The provider's outages never hold the drop or the API up: an open breaker pauses only this role's
 * calls, and /readyz stays as it was.
 */
export async function startIssuerRole(ctx: RoleContext): Promise<RoleHandle> {
  const { config, kafka, prisma, parking, logIdentity, metrics } = ctx;
  const log = logger.child({ role: 'issuer' });
  const client = createProviderClient(config, metrics.registry, log);
  const issuer = new Issuer(kafka, config, { client, vault: new CodeVault(prisma, config.CODE_KEYS), parking, logIdentity });
  issuer.health = ctx.health.reporter('issuer');
  metrics.counterFrom('firstcome_issuer_issued_total', 'GifticonIssued events the issuer appended', () => issuer.stats.issued);
  metrics.counterFrom('firstcome_issuer_parked_total', 'winners whose issuance the issuer parked', () => issuer.stats.parked);
  let assigned = false;
  await issuer.start();
  void issuer.ready().then(() => (assigned = true));
  return {
    ready: () => assigned && issuer.stops.size === 0,
    // the provider failing pauses only the issuer's calls: the drop and the API go on, so the process stays ready
    degraded: (): Record<string, string> =>
      client.breakerState === 'closed'
        ? {}
        : { issuer: `the provider is failing: its circuit breaker is ${client.breakerState}, calls paused but for a probe now and then` },
    stop: () => issuer.stop(),
  };
}
