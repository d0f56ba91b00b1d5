import { evolveTerms, issuesAtDecision, judgeEntry, type CampaignTerms } from '../domain/campaign.js';
import type { EntrantRegistered, Logged } from '../domain/events.js';
import type { LineAnswer, LineWork } from './ports.js';

/** One batch sorted for the Redis ordering projection; pure, so the Lua-vs-domain property test runs it too. */
export interface BatchWork {
  work: LineWork;
  /** the entries of each line of `work.lines`, in the same order */
  entries: Logged<EntrantRegistered>[][];
  /** entries naming a campaign with no terms: Redis lost it, or no such campaign is in this log */
  unknown: Logged<EntrantRegistered>[];
}

/**
 * Facts first (campaigns exist before their entries are placed), in log order, with the terms
 * evolving as the log says (`evolveTerms`, the map is updated in place); each entry carries its
 * verdict under the terms at its point of the log (`judgeEntry`), for place.lua, which alone knows
 * whether the user is in line already (`decideEntry`: then the verdict does not matter).
 * `replaying` marks what is re-applied while the projection is rebuilt.
 */
export function lineWorkOf(logged: readonly Logged[], terms: Map<string, CampaignTerms>, replaying: (l: Logged) => boolean): BatchWork {
  const work: LineWork = { facts: [], lines: [] };
  // a line and its entries are built side by side: a rebuild's batch holds tens of thousands of entries
  const byCampaign = new Map<
    string,
    { line: LineWork['lines'][number]; logged: Logged<EntrantRegistered>[]; replayed: boolean; admitted: boolean }
  >();
  const unknown: Logged<EntrantRegistered>[] = [];
  for (const l of logged) {
    const e = l.event;
    if (e.type === 'EntrantRegistered') {
      const t = terms.get(e.campaignId);
      if (!t) {
        unknown.push(l as Logged<EntrantRegistered>);
        continue;
      }
      // judged against the terms at this point of the log: a close later in the batch does not count
      const rejection = judgeEntry(t, Date.parse(e.occurredAt));
      let c = byCampaign.get(e.campaignId);
      if (!c)
        byCampaign.set(
          e.campaignId,
          (c = { line: { campaignId: e.campaignId, entries: [] }, logged: [], replayed: true, admitted: false }),
        );
      // the first entry of a campaign is a fact for reports; one write per batch is enough
      if (rejection === null && !c.admitted) {
        c.admitted = true;
        work.facts.push({ event: e, replaying: false });
      }
      c.line.entries.push({ offset: l.offset, userId: e.userId, rejection });
      c.logged.push(l as Logged<EntrantRegistered>);
      if (c.replayed && !replaying(l)) c.replayed = false;
      continue;
    }
    const next = evolveTerms(terms.get(e.campaignId) ?? null, e);
    if (next) terms.set(e.campaignId, next);
    work.facts.push({ event: e, replaying: replaying(l) });
  }
  const entries: Logged<EntrantRegistered>[][] = [];
  for (const { line, logged: list, replayed } of byCampaign.values()) {
    work.lines.push(replayed ? { ...line, replayed } : line);
    entries.push(list);
  }
  return { work, entries, unknown };
}

/**
 * The campaigns of a batch that mint codes now: a MINTED campaign with an entry placed for the
 * first time within its stock, outside a replay. Their data keys are loaded before any is sealed.
 */
export function mintingCampaigns(
  { work, entries }: Pick<BatchWork, 'work' | 'entries'>,
  answers: readonly (readonly LineAnswer[])[],
  terms: ReadonlyMap<string, CampaignTerms>,
  replaying: (l: Logged) => boolean,
): string[] {
  const newWinner = (a: LineAnswer, offset: bigint, stock: number) =>
    a.kind !== 'rejected' && a.firstOffset === offset && a.rank + 1 <= stock;
  return work.lines
    .filter(({ campaignId }, ci) => {
      const t = terms.get(campaignId)!;
      return issuesAtDecision(t) && entries[ci]!.some((l, i) => !replaying(l) && newWinner(answers[ci]![i]!, l.offset, t.stock));
    })
    .map((w) => w.campaignId);
}
