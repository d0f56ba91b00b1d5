import { GraphQLError } from 'graphql';
import { closedSince } from '../domain/campaign.js';
import { CHUNK_ID, chunkIdOf, codesLoaded, MAX_CODE_CHARS, MAX_CODES_PER_CHUNK } from '../domain/inventory.js';
import type { DataKey } from '../domain/sealing.js';
import { CodeKeyError } from '../infra/codeKeys/vault.js';
import { badInput, notFound, unavailable } from './errors.js';
import { campaignId, requireAdmin, type Signed } from './guards.js';
import type { EventAppender } from '../infra/kafka/appender.js';
import type { RedisOrdering } from '../../projections/redis-ordering/index.js';

/** What `loadCodes` uses of the API's services (src/api/resolvers.ts's ApiServices). */
interface LoadCtx extends Signed {
  services: { ordering: RedisOrdering; appender: Pick<EventAppender, 'append'>; codeKeys?: CodeKeys };
}

/** The data keys of campaigns, as `loadCodes` seals with them (src/infra/codeKeys/vault.ts's CodeVault). */
export interface CodeKeys {
  dataKey(campaignId: string): Promise<DataKey>;
}

/** A code as a brand gives it: printable, no spaces around it, at most MAX_CODE_CHARS. */
// eslint-disable-next-line no-control-regex
const CODE = /^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$/;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `loadCodes(campaignId, codes, chunkId)`: one chunk of an INVENTORY campaign's codes appended to
 * the log as one CodesLoaded event (sealed, with keyed hashes), then answered once the single
 * writer has applied it: how many were new, how many were duplicates (given before to the campaign,
 * or twice in the chunk), and how many the campaign holds now. The same chunk again (its id given,
 * or derived from its codes) answers as it did the first time and loads nothing.
 */
export function loadCodesResolver() {
  return async (_: unknown, args: { campaignId: unknown; codes: unknown; chunkId?: unknown }, ctx: LoadCtx) => {
    requireAdmin(ctx);
    const s = ctx.services;
    const id = campaignId(args.campaignId);
    const codes = args.codes;
    if (!Array.isArray(codes) || codes.length === 0) throw badInput('codes', 'must hold at least one code');
    if (codes.length > MAX_CODES_PER_CHUNK) throw badInput('codes', `at most ${MAX_CODES_PER_CHUNK} codes a call`);
    codes.forEach((c: unknown, i) => {
      if (typeof c !== 'string' || c.length > MAX_CODE_CHARS || !CODE.test(c))
        throw badInput(`codes.${i}`, `a code is 1..${MAX_CODE_CHARS} printable characters, no spaces around it`);
    });
    const given = args.chunkId ?? null;
    if (given !== null && (typeof given !== 'string' || !CHUNK_ID.test(given)))
      throw badInput('chunkId', 'must match [A-Za-z0-9._:-]{1,128}');
    const chunkId = given ?? chunkIdOf(codes as string[]);

    const v = await s.ordering.campaign(id);
    if (v === 'building') throw unavailable();
    if (!v) throw notFound('campaign');
    if (v.terms.issuance !== 'INVENTORY') throw badInput('campaignId', 'codes are loaded into INVENTORY campaigns only');
    const before = await s.ordering.inventory(id, chunkId);
    const answer = (inv: typeof before) => ({
      loaded: inv.chunk!.loaded,
      duplicates: inv.chunk!.duplicates.length,
      duplicateIndexes: inv.chunk!.duplicates,
      total: inv.total,
    });
    if (before.chunk) return answer(before);
    // after the close, codes are taken only while winners still wait for one
    if (closedSince(v.terms, Date.now()) !== null && before.total >= Math.min(v.winners, v.terms.stock))
      throw badInput('campaignId', 'the campaign is closed and no winner waits for a code');
    if (!s.codeKeys) throw new GraphQLError('codes cannot be sealed by this process', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    const dk = await s.codeKeys.dataKey(id).catch((err: unknown) => {
      if (err instanceof CodeKeyError)
        throw new GraphQLError(`the campaign's data key cannot be had (${err.reason}): nothing was loaded`, {
          extensions: { code: 'INTERNAL_SERVER_ERROR', reason: err.reason },
        });
      throw err;
    });
    await s.appender.append(codesLoaded(dk, chunkId, codes as string[], new Date()));
    const end = Date.now() + 15_000;
    for (;;) {
      const inv = await s.ordering.inventory(id, chunkId);
      if (inv.chunk) return answer(inv);
      // appended, so it will be applied: the same call again answers then
      if (Date.now() > end) throw unavailable(1000);
      await sleep(15);
    }
  };
}

/**
 * `Campaign.codes`: an INVENTORY campaign's codes loaded, issued and short, for admins; null
 * otherwise. Counted from Redis alone, winners included: a campaign listed from the read model
 * may hold fewer winners there yet. While Redis rebuilds the campaign its counts are partial, so
 * the answer is UNAVAILABLE, never a shortage that is not there.
 */
export function campaignCodesResolver() {
  return async (c: { id: string }, _: unknown, ctx: LoadCtx) => {
    if (!ctx.caller?.admin) return null;
    const v = await ctx.services.ordering.campaign(c.id);
    if (v === 'building') throw unavailable();
    if (v?.terms.issuance !== 'INVENTORY') return null;
    const inv = await ctx.services.ordering.inventory(c.id);
    return { loaded: inv.total, issued: inv.issued, short: Math.max(0, Math.min(v.winners, v.terms.stock) - inv.total) };
  };
}
