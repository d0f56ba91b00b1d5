import { GIFTICON_CODE_PATTERN } from './codes.js';
import { evolveOwned, initialState, type CampaignState } from './campaign.js';
import type { Logged } from './events.js';

/**
 * Checks the invariants of CONTRACT.md (I1–I3) against one campaign's log, by deciding it again
 * with the pure decider and comparing with the decisions the log holds. Pure: the demo, the tests
 * and the reconcile job feed it what they read.
 */
export interface Audit {
  ok: boolean;
  problems: string[];
  stock: number;
  entrants: number;
  winners: number;
  gifticons: number;
  state: CampaignState;
}

export function auditCampaign(log: Logged[]): Audit {
  const problems: string[] = [];
  let state = initialState();
  const winnerPositions = new Map<string, number>();
  const codes = new Map<string, string>();
  const seenCodes = new Set<string>();
  for (const l of log) {
    // the fold owns its state (linear in the log); a WinnerSelected changes no place
    state = evolveOwned(state, l);
    const e = l.event;
    if (e.type === 'WinnerSelected') {
      if (winnerPositions.has(e.userId)) problems.push(`I2: ${e.userId} selected twice`);
      winnerPositions.set(e.userId, e.position);
      const place = state.places.get(e.userId);
      if (!place) problems.push(`I3: ${e.userId} selected without a place in the line`);
      else if (place.position !== e.position)
        problems.push(`I3: ${e.userId} selected at ${e.position}, the log places them at ${place.position}`);
    }
    if (e.type === 'GifticonIssued') {
      if (codes.has(e.userId)) problems.push(`I2: ${e.userId} got a second gifticon`);
      if (seenCodes.has(e.code)) problems.push(`I2: a gifticon code was issued twice`);
      if (!GIFTICON_CODE_PATTERN.test(e.code)) problems.push(`I2: a gifticon code has the wrong shape`);
      if (!winnerPositions.has(e.userId)) problems.push(`I2: ${e.userId} got a gifticon before being selected`);
      codes.set(e.userId, e.code);
      seenCodes.add(e.code);
    }
  }
  const stock = state.terms?.stock ?? 0;
  const entrants = state.places.size;
  const winners = winnerPositions.size;
  if (winners !== Math.min(stock, entrants)) problems.push(`I1: ${winners} winners, expected min(${stock}, ${entrants})`);
  const positions = [...winnerPositions.values()].sort((a, b) => a - b);
  positions.forEach((p, i) => {
    if (p !== i + 1) problems.push(`I3: winner positions are not 1..${winners} (found ${p} at ${i + 1})`);
  });
  for (const [user, place] of state.places) {
    const won = winnerPositions.has(user);
    if (place.position <= stock && !won) problems.push(`I3: ${user} is at ${place.position} <= ${stock} but did not win`);
    if (place.position > stock && won) problems.push(`I3: ${user} is at ${place.position} > ${stock} but won`);
  }
  if (codes.size !== winners) problems.push(`I2: ${codes.size} gifticons for ${winners} winners`);
  return { ok: problems.length === 0, problems: problems.slice(0, 20), stock, entrants, winners, gifticons: codes.size, state };
}

export interface LogAudit {
  ok: boolean;
  /** Problems across campaigns (a code issued in two of them), then each campaign's, named by it. */
  problems: string[];
  /** Only the problems no single campaign's audit can see. */
  acrossCampaigns: string[];
  campaigns: Map<string, Audit>;
}

/**
 * Audits every campaign of a log, and I2's "codes unique across all campaigns", which no single
 * campaign's audit can see.
 */
export function auditLog(log: Logged[]): LogAudit {
  const byCampaign = new Map<string, Logged[]>();
  const codeOwner = new Map<string, string>();
  const across: string[] = [];
  for (const l of log) {
    const id = l.event.campaignId;
    let list = byCampaign.get(id);
    if (!list) byCampaign.set(id, (list = []));
    list.push(l);
    if (l.event.type !== 'GifticonIssued') continue;
    const owner = codeOwner.get(l.event.code);
    if (owner !== undefined && owner !== id) across.push(`I2: a gifticon code of ${owner} was issued again in ${id}`);
    else codeOwner.set(l.event.code, id);
  }
  const campaigns = new Map([...byCampaign].map(([id, events]) => [id, auditCampaign(events)] as const));
  const problems = [...across, ...[...campaigns].flatMap(([id, a]) => a.problems.map((p) => `${id}: ${p}`))];
  return { ok: problems.length === 0, problems: problems.slice(0, 20), acrossCampaigns: across.slice(0, 20), campaigns };
}
