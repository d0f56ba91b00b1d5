import { createHash } from 'node:crypto';
import { identityKey, type LogIdentity } from '../infra/kafka/logIdentity.js';

/**
 * A winner's idempotency key at the provider: `fc-` + base64url(SHA-256(the log's identity, the
 * winner's event id)). The same winner of the same log gets the same key from every issuer process,
 * across retries, crashes and restarts, so the provider hands back the voucher it already issued; a
 * topic created again (another log, the same event ids) gets other keys, never another log's vouchers.
 */
export function idempotencyKey(log: LogIdentity, winnerEventId: string): string {
  return `fc-${createHash('sha256').update(identityKey(log)).update('\n').update(winnerEventId).digest('base64url')}`;
}
