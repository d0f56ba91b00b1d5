import { evolveTerms, judgeEntry, type CampaignTerms, type Rejection } from '../domain/campaign.js';
import type { EntrantRegistered, Logged } from '../domain/events.js';
import type { LineWork } from './ports.js';

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
  const byCampaign = new Map<string, { logged: Logged<EntrantRegistered>; rejection: Rejection | null }[]>();
  const unknown: Logged<EntrantRegistered>[] = [];
  const firstEntry = new Set<string>();
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
      // the first entry of a campaign is a fact for reports; one write per batch is enough
      if (!firstEntry.has(e.campaignId) && rejection === null) {
        firstEntry.add(e.campaignId);
        work.facts.push({ event: e, replaying: false });
      }
      const list = byCampaign.get(e.campaignId) ?? [];
      list.push({ logged: l as Logged<EntrantRegistered>, rejection });
      byCampaign.set(e.campaignId, list);
      continue;
    }
    const next = evolveTerms(terms.get(e.campaignId) ?? null, e);
    if (next) terms.set(e.campaignId, next);
    work.facts.push({ event: e, replaying: replaying(l) });
  }
  const entries: Logged<EntrantRegistered>[][] = [];
  for (const [campaignId, list] of byCampaign) {
    const replayed = list.every(({ logged }) => replaying(logged));
    work.lines.push({ campaignId, entries: list.map(({ logged, rejection }) => ({ offset: logged.offset, userId: logged.event.userId, rejection })), ...(replayed && { replayed }) });
    entries.push(list.map((x) => x.logged));
  }
  return { work, entries, unknown };
}
