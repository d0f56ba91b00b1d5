import { randomBytes } from 'node:crypto';
import type { Audit } from '../domain/audit.js';
import { MAX_CODES_PER_CHUNK } from '../domain/inventory.js';
import type { createClient } from './crowd.js';

/**
 * `npm run demo -- --issuance inventory`: a generated list of a brand's codes loaded before the
 * crowd comes (one per unit of stock), and the check that every winner holds exactly one code of
 * the list, none twice.
 */
export async function loadDemoCodes(
  client: ReturnType<typeof createClient>,
  admin: string,
  campaign: string,
  stock: number,
): Promise<Set<string>> {
  const codes = Array.from(
    { length: stock },
    (_, i) => `BRAND-${String(i + 1).padStart(7, '0')}-${randomBytes(4).toString('hex').toUpperCase()}`,
  );
  for (let from = 0; from < codes.length; from += MAX_CODES_PER_CHUNK) {
    const r = await client.post<{ data?: { loadCodes: { loaded: number } }; errors?: unknown }>(
      admin,
      `mutation($c: ID!, $codes: [String!]!) { loadCodes(campaignId: $c, codes: $codes) { loaded duplicates total } }`,
      { c: campaign, codes: codes.slice(from, from + MAX_CODES_PER_CHUNK) },
    );
    if (r.body.errors) throw new Error(`loadCodes failed: ${JSON.stringify(r.body.errors)}`);
  }
  return new Set(codes);
}

/** Each winner holds exactly one code of the list, and no code went to two winners. */
export function checkInventory(audit: Audit, list: ReadonlySet<string>): { ok: boolean; outside: number; twice: number } {
  const held = [...audit.codes.values()];
  const outside = held.filter((c) => !list.has(c)).length;
  const twice = held.length - new Set(held).size;
  return { ok: outside === 0 && twice === 0 && held.length === audit.winners, outside, twice };
}
