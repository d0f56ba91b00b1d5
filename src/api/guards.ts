import type { Caller } from './auth.js';
import { USER_ID } from './auth.js';
import { badInput, forbidden, unauthenticated } from './errors.js';

/**
 * The checks every GraphQL field makes before it does anything: who is calling, and whether the
 * arguments have the shapes of CONTRACT.md. Shared by the API and the fields served from
 * projections/ and batch/.
 */

/** What a resolver's context must carry for the guards. */
export interface Signed {
  caller: Caller | null;
}

export function requireUser(ctx: Signed): Caller {
  if (!ctx.caller) throw unauthenticated();
  return ctx.caller;
}

export function requireAdmin(ctx: Signed): Caller {
  const c = requireUser(ctx);
  if (!c.admin) throw forbidden();
  return c;
}

export const CAMPAIGN_ID = /^[a-z0-9-]{1,64}$/;

export function campaignId(value: unknown, field = 'campaignId'): string {
  if (typeof value !== 'string' || !CAMPAIGN_ID.test(value)) throw badInput(field, 'must match [a-z0-9-]{1,64}');
  return value;
}

export function userId(value: unknown, field = 'userId'): string {
  if (typeof value !== 'string' || !USER_ID.test(value)) throw badInput(field, 'must be 1-128 chars of A-Za-z0-9._:@-');
  return value;
}
