import { badInput, notFound } from '../errors.js';
import { campaignId } from '../guards.js';
import type { Ctx } from '../resolvers.js';
import type { FairnessReader } from './reader.js';

/** `fairness`, `consistencyProof` (anyone, no token) and `Entry.receipt` (its owner) of issue 31. */
export function fairnessResolvers(reader: FairnessReader) {
  const int = (v: unknown, field: string, min: number, max: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badInput(field, `must be an integer ${min} .. ${max}`);
    return v;
  };
  return {
    Query: {
      fairness: async (_: unknown, args: { campaignId: unknown }) => {
        const f = await reader.fairness(campaignId(args.campaignId));
        return f;
      },
      consistencyProof: async (_: unknown, args: { campaignId: unknown; from: unknown; to: unknown }) => {
        const id = campaignId(args.campaignId);
        const to = int(args.to, 'to', 0, 2 ** 31 - 1);
        const from = int(args.from, 'from', 0, to);
        const proof = await reader.consistencyProof(id, from, to);
        if (proof === null) {
          if (!(await reader.line(id))) throw notFound('campaign');
          throw badInput('to', 'beyond the leaves published so far');
        }
        return proof;
      },
    },
    Fairness: {
      leaves: (f: { leavesPage(first: number, after: number): string[] }, args: { first?: unknown; after?: unknown }) =>
        f.leavesPage(int(args.first ?? 1000, 'first', 1, 10_000), int(args.after ?? -1, 'after', -1, 2 ** 31 - 1)),
    },
    Entry: {
      receipt: async (
        e: { campaignId: string; userId: string; ticket: string; position: number | null; receipt?: unknown },
        _: unknown,
        ctx: Ctx,
      ) => {
        // the nonce ties the user to their leaf: their own eyes only
        if (ctx.caller?.userId !== e.userId) return null;
        // read already by the subscription that pushes it
        if (e.receipt !== undefined) return e.receipt;
        const r = await reader.receipt(e.campaignId, e.userId, e.position, e.ticket);
        return r;
      },
    },
  };
}
