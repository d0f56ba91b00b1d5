import { GIFTICON_CODE_PATTERN } from './codes.js';
import { evolveOwned, initialState, type CampaignState } from './campaign.js';
import type { GifticonIssued, Logged } from './events.js';
import { keepCodes } from './inventory.js';
import { isSealed } from './sealing.js';

/**
 * A gifticon's code in plaintext, as the audit checks it: a version 1 event's own, a sealed one's
 * opened by the caller (who holds the keys); null when it cannot be opened (its key shredded).
 */
export type CodeOpener = (e: GifticonIssued) => string | null;
/** The opener without keys: version 1 codes only, sealed ones unread. */
export const plainCodes: CodeOpener = (e) => ('code' in e ? e.code : null);

/**
 * Checks the invariants of CONTRACT.md (I1–I3, I6's sealing) against one campaign's log, by deciding it again
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
  /** sealed codes the opener could not open (their key shredded, or no keys given): their I2 checks are skipped */
  unopened: number;
  /** each gifticon's code in plaintext, by user ('' where it could not be opened) */
  codes: Map<string, string>;
  state: CampaignState;
}

/**
 * What the audit is told beyond the log, for I6 of a PROVIDER campaign once its issuance is quiet:
 * whether a winner's issuance is parked and not retried yet (the dead-letter topic or the `parked`
 * view holds that, not the log). Left out, a PROVIDER winner without a voucher reads as pending.
 */
export interface IssuanceFacts {
  openParked(campaignId: string, userId: string): boolean;
}

export function auditCampaign(log: Logged[], open: CodeOpener = plainCodes, issuance?: IssuanceFacts): Audit {
  const problems: string[] = [];
  let state = initialState();
  const winnerPositions = new Map<string, number>();
  const codes = new Map<string, string>();
  const seenCodes = new Set<string>();
  const vouchers = new Set<string>();
  let unopened = 0;
  // INVENTORY (I6): the codes kept in load order, as the writer keeps them (keepCodes)
  const loaded = { kept: [] as string[], seen: new Set<string>(), chunks: new Set<string>() };
  // and the positions issued so far, with the first one still waiting
  const issuedAt = { positions: new Set<number>(), waiting: 1 };
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
    if (e.type === 'CodesLoaded' && !loaded.chunks.has(e.chunkId)) {
      loaded.chunks.add(e.chunkId);
      loaded.kept.push(...keepCodes(loaded.seen, e.codes).kept);
      if (e.codes.some((c) => !isSealed(c.sealed))) problems.push(`I6: a chunk of codes is written in plaintext`);
    }
    if (e.type === 'GifticonIssued' && state.terms?.issuance === 'INVENTORY') {
      const k = winnerPositions.get(e.userId);
      const want = k === undefined ? undefined : loaded.kept[k - 1];
      if (want === undefined) problems.push(`I6: ${e.userId} got a code before the ${k ?? '?'}-th was loaded`);
      else if (!('sealedCode' in e) || e.sealedCode !== want)
        problems.push(`I6: ${e.userId} at ${k} does not hold the ${k}-th loaded code`);
      // winners waiting for codes are issued in position order: those issued are always positions 1..n
      if (k !== undefined && !codes.has(e.userId)) {
        if (k !== issuedAt.waiting) problems.push(`I6: ${e.userId} at ${k} was issued while the winner at ${issuedAt.waiting} waited`);
        issuedAt.positions.add(k);
        while (issuedAt.positions.has(issuedAt.waiting)) issuedAt.waiting++;
      }
    }
    if (e.type === 'GifticonIssued') {
      if (codes.has(e.userId)) problems.push(`I2: ${e.userId} got a second gifticon`);
      if (!winnerPositions.has(e.userId)) problems.push(`I2: ${e.userId} got a gifticon before being selected`);
      if (e.version >= 2 && (!('sealedCode' in e) || 'code' in e)) problems.push(`I6: ${e.userId}'s gifticon is written in plaintext`);
      if (state.terms?.issuance === 'PROVIDER') {
        const voucher = 'voucherId' in e ? e.voucherId : undefined;
        if (!voucher) problems.push(`I6: ${e.userId}'s gifticon names no provider voucher`);
        else if (vouchers.has(voucher)) problems.push(`I6: the provider's voucher ${voucher} was given to two winners`);
        else vouchers.add(voucher);
      }
      const code = open(e);
      if (code === null) unopened++;
      else {
        if (seenCodes.has(code)) problems.push(`I2: a gifticon code was issued twice`);
        // the 128-bit rule is the minted codes'; a brand's codes have the brand's shape
        if ((state.terms?.issuance ?? 'MINTED') === 'MINTED' && !GIFTICON_CODE_PATTERN.test(code))
          problems.push(`I2: a gifticon code has the wrong shape`);
        seenCodes.add(code);
      }
      codes.set(e.userId, code ?? '');
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
  // a MINTED campaign issues at the decision; the others' winners may wait PENDING, never hold two
  const minted = (state.terms?.issuance ?? 'MINTED') === 'MINTED';
  if (minted ? codes.size !== winners : codes.size > winners) problems.push(`I2: ${codes.size} gifticons for ${winners} winners`);
  if (issuance && state.terms?.issuance === 'PROVIDER' && state.id) {
    // I6: exactly one voucher, or one open parked issuance
    for (const user of winnerPositions.keys()) {
      const parked = issuance.openParked(state.id, user);
      if (codes.has(user) && parked) problems.push(`I6: ${user} holds a voucher and an open parked issuance`);
      if (!codes.has(user) && !parked) problems.push(`I6: ${user} has neither a voucher nor a parked issuance`);
    }
  }
  return {
    ok: problems.length === 0,
    problems: problems.slice(0, 20),
    stock,
    entrants,
    winners,
    gifticons: codes.size,
    unopened,
    codes,
    state,
  };
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
export function auditLog(log: Logged[], open: CodeOpener = plainCodes, issuance?: IssuanceFacts): LogAudit {
  const byCampaign = new Map<string, Logged[]>();
  const codeOwner = new Map<string, string>();
  const across: string[] = [];
  /** campaigns whose codes are the brand's or the provider's: unique within their campaign only (I2) */
  const notMinted = new Set<string>();
  for (const l of log) {
    const id = l.event.campaignId;
    let list = byCampaign.get(id);
    if (!list) byCampaign.set(id, (list = []));
    list.push(l);
    if (l.event.type === 'CampaignCreated' && (l.event.issuance ?? 'MINTED') !== 'MINTED') notMinted.add(id);
    if (l.event.type !== 'GifticonIssued' || notMinted.has(id)) continue;
    const code = open(l.event);
    if (code === null) continue;
    const owner = codeOwner.get(code);
    if (owner !== undefined && owner !== id) across.push(`I2: a gifticon code of ${owner} was issued again in ${id}`);
    else codeOwner.set(code, id);
  }
  const campaigns = new Map([...byCampaign].map(([id, events]) => [id, auditCampaign(events, open, issuance)] as const));
  const problems = [...across, ...[...campaigns].flatMap(([id, a]) => a.problems.map((p) => `${id}: ${p}`))];
  return { ok: problems.length === 0, problems: problems.slice(0, 20), acrossCampaigns: across.slice(0, 20), campaigns };
}
