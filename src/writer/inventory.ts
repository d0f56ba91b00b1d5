import type { CampaignTerms, Minter } from '../domain/campaign.js';
import type { CampaignEvent, Logged } from '../domain/events.js';
import { loadedGifticon } from '../domain/inventory.js';
import type { BatchWork } from './lineWork.js';
import type { CampaignLines, LineAnswer } from './ports.js';

/**
 * INVENTORY issuance in the single writer. The k-th winner by position takes the k-th code loaded
 * (CodesLoaded, kept in load order by the Redis projection: loadCodes.lua), a pure function of the
 * log, so a replay reproduces it. A winner placed while its code is loaded is issued in the same
 * transaction; one placed before waits PENDING, and a later chunk issues the waiting winners in
 * position order. Either way the same rule runs: every winner from the first without a gifticon up
 * to the last covered by both the line and the codes is issued, once.
 */

/**
 * The INVENTORY campaigns of a batch with something to issue: a winner placed for the first time,
 * or a chunk of codes loaded, outside a replay.
 */
export function stockingCampaigns(
  { work, entries }: Pick<BatchWork, 'work' | 'entries'>,
  answers: readonly (readonly LineAnswer[])[],
  terms: ReadonlyMap<string, CampaignTerms>,
  replaying: (l: Logged) => boolean,
): string[] {
  const inventory = (id: string) => terms.get(id)?.issuance === 'INVENTORY';
  const ids = new Set<string>();
  for (const f of work.facts)
    if (f.event.type === 'CodesLoaded' && !f.replaying && inventory(f.event.campaignId)) ids.add(f.event.campaignId);
  work.lines.forEach(({ campaignId }, ci) => {
    if (ids.has(campaignId) || !inventory(campaignId)) return;
    const stock = terms.get(campaignId)!.stock;
    const placed = entries[ci]!.some((l, i) => {
      const a = answers[ci]![i]!;
      return !replaying(l) && a.kind !== 'rejected' && a.firstOffset === l.offset && a.rank < stock;
    });
    if (placed) ids.add(campaignId);
  });
  return [...ids];
}

/** The GifticonIssued events due in these campaigns; `issuing` (the partition writer's) keeps each winner to one. */
export async function issueLoadedCodes(
  campaignIds: readonly string[],
  lines: CampaignLines,
  terms: ReadonlyMap<string, CampaignTerms>,
  issuing: Map<string, Set<string>>,
  mint: Minter,
  now: Date,
): Promise<CampaignEvent[]> {
  const out: CampaignEvent[] = [];
  const due = await Promise.all(campaignIds.map((id) => lines.dueCodes(id, terms.get(id)!.stock)));
  campaignIds.forEach((id, i) => {
    let issued = issuing.get(id);
    if (!issued) issuing.set(id, (issued = new Set()));
    for (const d of due[i]!) {
      if (issued.has(d.userId)) continue;
      issued.add(d.userId);
      out.push(loadedGifticon(id, d.userId, d.position, d.sealed, mint.id(), now));
    }
  });
  return out;
}
