import { eventsForPlace, type CampaignTerms } from '../domain/campaign.js';
import { ticketOf, type CampaignEvent, type Logged } from '../domain/events.js';
import { issueLoadedCodes, stockingCampaigns } from './inventory.js';
import { lineWorkOf, mintingCampaigns } from './lineWork.js';
import { closedIn, pushTo, soldOutIn, type LineHeads, type NewLeaf } from './lineHeads.js';
import type { Reply } from './replies.js';
import type { Mode, WriterShared } from './writerState.js';

/** What the decide step reads of its partition's writer. */
export interface DecideContext {
  partition: number;
  s: WriterShared;
  /** the partition's campaign lines as Merkle trees (null: fairness off) */
  heads: LineHeads | null;
  /** the offset after the last batch whose decisions are committed */
  committed: bigint;
  /** INVENTORY winners this partition issued a code to, not shown by Redis yet (partitionWriter.ts) */
  issuing: Map<string, Set<string>>;
  /** the terms of the partition's campaigns met so far (partitionWriter.ts) */
  terms: Map<string, CampaignTerms>;
}

/** Places a batch's entries and makes the decisions of those decided anew. */
export async function decideBatch(
  w: DecideContext,
  fetched: readonly Logged[],
  last: bigint,
  rebuild: Extract<Mode, { kind: 'rebuilding' }> | null,
): Promise<Outcome> {
  const p = w.partition;
  const { lines } = w.s;
  const { terms } = w;
  // below `until` entries were decided before: they are only re-applied
  const until = max(rebuild?.until ?? 0n, w.committed);
  const replaying = (l: Logged) => l.offset < until;
  for (const l of fetched) if (l.event.type === 'CampaignCreated') rebuild?.created.add(l.event.campaignId);

  // below the bound of a rebuild, campaigns it did not re-create are not in Redis: their facts are skipped
  const logged = rebuild ? fetched.filter((l) => !replaying(l) || rebuild.created.has(l.event.campaignId)) : fetched;
  const unknown = [
    ...new Set(logged.filter((l) => l.event.type === 'EntrantRegistered' || l.event.type === 'CodesLoaded').map((l) => l.event.campaignId)),
  ].filter((id) => !terms.has(id));
  if (unknown.length > 0) for (const [id, t] of await lines.terms(unknown)) terms.set(id, t);

  // 1. facts first, then every entry with its verdict under the terms (lineWork.ts)
  const { work, entries, unknown: strays } = lineWorkOf(logged, terms, replaying);
  if (strays.some((l) => !replaying(l)) && !(await lines.isBuilt(p))) return 'REBUILD';
  // 2. places: one Lua call per campaign, in the same round trip as the facts
  const answers = await lines.place(p, work);
  if (answers === 'REBUILD') return 'REBUILD';

  // 3. new winners, outside a replay, get their events; the waiting callers their answer. Their
  // codes are sealed: the data keys of the campaigns that mint now are loaded first. A key that
  // cannot be had (CODE_KEYS lacks it, or it was shredded) fails the batch with why, retried
  // with a backoff: nothing is told or issued, and never in plaintext.
  const minting = mintingCampaigns({ work, entries }, answers, terms, replaying);
  if (minting.length > 0) await w.s.codes.prepare(minting);
  const outputs: CampaignEvent[] = [];
  const replies: { instance: string; reply: Reply }[] = [];
  const now = new Date();
  const leaves = new Map<string, NewLeaf[]>();
  work.lines.forEach(({ campaignId }, ci) => {
    const t = terms.get(campaignId)!;
    const stock = t.stock;
    entries[ci]!.forEach((l, i) => {
      if (replaying(l)) return;
      const a = answers[ci]![i]!;
      const r = l.event.replyTo;
      const to = r && { instance: r.instance, request: r.request, campaignId, userId: l.event.userId };
      if (a.kind === 'rejected') {
        if (to)
          replies.push({
            instance: to.instance,
            reply: { request: to.request, campaignId, userId: to.userId, kind: 'rejected', rejection: a.rejection },
          });
        return;
      }
      w.s.stats.entries++;
      const place = { position: a.rank + 1, ticket: ticketOf(p, a.firstOffset) };
      if (a.firstOffset === l.offset) {
        outputs.push(...eventsForPlace(campaignId, t, l.event.userId, place, now, w.s.mint, w.s.codes.sealer));
        if (w.heads) pushTo(leaves, campaignId, { ...place, userId: l.event.userId, at: l.event.occurredAt });
      }
      if (to)
        replies.push({
          instance: to.instance,
          reply: { request: to.request, campaignId, userId: to.userId, kind: 'placed', ...place, stock },
        });
    });
  });

  // INVENTORY: winners whose loaded code is there, placed now or waiting for a chunk just loaded
  const stocking = stockingCampaigns({ work, entries }, answers, terms, replaying);
  if (stocking.length > 0) outputs.push(...(await issueLoadedCodes(stocking, lines, terms, w.issuing, w.s.mint, now)));

  // The places are a pure function of the committed entries' offsets, so the waiting callers may
  // hear them now; gifticon codes are random and reach them only after the commit. A place told
  // before the commit does not change when a crash makes the batch run again: the same offsets
  // give the same places. (Telling after the commit cost each call one transaction, ~10-100 ms.)
  if (replies.length > 0) await w.s.replies.tell(replies);
  // 4. the heads due go into the same commit as the decisions they cover
  if (w.heads) outputs.push(...(await w.heads.heads(leaves, soldOutIn(outputs), closedIn(work.facts, terms))));

  // replayed entries were decided before: only a batch that reaches past `until` commits
  return { outputs: last >= until ? outputs : null };
}

/** What deciding a batch came to: the projection gone, or its decisions (null: all of it was decided before, below `until`). */
export type Outcome = 'REBUILD' | { outputs: CampaignEvent[] | null };

const max = (a: bigint, b: bigint) => (a > b ? a : b);
