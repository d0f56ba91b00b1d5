import type { CampaignTerms, Rejection } from '../../src/domain/campaign.js';
import { CHALLENGE_OFF, type ChallengeSetting } from '../../src/domain/challenge.js';
import type { LineAnswer } from '../../src/writer/ports.js';
import { ticketOf } from '../../src/domain/events.js';

/**
 * The Lua scripts' answers, parsed into typed unions here at the edge: nothing outside this file
 * reads a script's reply by position.
 */

/** What the gate of `enter` (lookup.lua) knows about a user and a campaign. */
export type GateAnswer =
  /** no such campaign: its partition's projection is built and the campaign is not in it */
  | { kind: 'unknown' }
  /** the campaign is being rebuilt from the log: ask again later */
  | { kind: 'building' }
  /** the user has a place already */
  | { kind: 'placed'; ticket: string; position: number; stock: number }
  /** the user's entry is in the log, not placed yet */
  | { kind: 'pending'; ticket: string; stock: number }
  /** the user is not in line; `claimed` when this request holds the user's append claim */
  | { kind: 'new'; terms: CampaignTerms; taken: number; claimed: boolean; challenge: ChallengeSetting };

type Raw = readonly (string | number)[];
const num = (v: string | number | undefined) => Number(v);

/** lookup.lua's answer: as GateAnswer, except that a campaign not there is 'absent' until its partition is asked (gate.ts). */
export function parseGate(r: Raw): Exclude<GateAnswer, { kind: 'unknown' }> | { kind: 'absent' } {
  switch (r[0]) {
    case 'NOMETA':
      return { kind: 'absent' };
    case 'BUILDING':
      return { kind: 'building' };
    case 'PLACED': {
      const [, score, rank, stock, partition] = r;
      return { kind: 'placed', ticket: ticketOf(num(partition), BigInt(score!)), position: num(rank) + 1, stock: num(stock) };
    }
    case 'PENDING':
      return { kind: 'pending', ticket: String(r[1]), stock: num(r[2]) };
    case 'NEW': {
      const [, stock, opensAt, closesAt, closedAt, taken, , claimed, mode, difficulty] = r;
      const terms: CampaignTerms = {
        stock: num(stock),
        opensAt: num(opensAt),
        closesAt: num(closesAt),
        closedAt: closedAt ? num(closedAt) : null,
      };
      return { kind: 'new', terms, taken: num(taken), claimed: num(claimed) === 1, challenge: challengeOf(mode, difficulty) };
    }
    default:
      throw new Error(`unexpected gate answer ${JSON.stringify(r)}`);
  }
}

/** crowdTurn.lua's answer: whether a sold-out crowd's turn was counted, and the campaign's close as it stands. */
export type CrowdTurn = { kind: 'gone' } | { kind: 'building' } | { kind: 'counted'; closedAt: number | null };

export function parseCrowdTurn(r: Raw): CrowdTurn {
  switch (r[0]) {
    case 'GONE':
      return { kind: 'gone' };
    case 'BUILDING':
      return { kind: 'building' };
    case 'COUNTED':
      return { kind: 'counted', closedAt: r[1] === '' || r[1] === undefined ? null : num(r[1]) };
    default:
      throw new Error(`unexpected crowd turn answer ${JSON.stringify(r)}`);
  }
}

/**
 * place.lua's answer for one campaign: the campaign's step count (`seq`) and an answer per entry;
 * REBUILD when the campaign's projection is gone, BEHIND when it lost writes.
 */
export function parsePlaces(r: Raw): 'REBUILD' | 'BEHIND' | { seq: number; answers: LineAnswer[] } {
  if (r[0] === 'REBUILD' || r[0] === 'BEHIND') return r[0];
  const out: LineAnswer[] = [];
  for (let i = 1; i < r.length; i += 2) {
    const rank = num(r[i]);
    out.push(rank < 0 ? { kind: 'rejected', rejection: rejectionOf(r[i + 1]) } : { kind: 'placed', rank, firstOffset: BigInt(r[i + 1]!) });
  }
  return { seq: num(r[0]), answers: out };
}

/** The meta's challenge fields (facts.ts writes them); none: OFF, as every campaign made before issue 34. */
export function challengeOf(mode: string | number | undefined | null, difficulty: string | number | undefined | null): ChallengeSetting {
  if (mode === 'POW') return { mode: 'POW', difficulty: difficulty === '' || difficulty == null ? null : num(difficulty) };
  if (mode === '' || mode == null || mode === 'OFF') return CHALLENGE_OFF;
  throw new Error(`unexpected challenge mode in the meta: ${String(mode)}`);
}

const REJECTIONS: readonly Rejection[] = ['NOT_OPEN', 'CLOSED', 'SOLD_OUT'];
function rejectionOf(v: string | number | undefined): Rejection {
  if (REJECTIONS.includes(v as Rejection)) return v as Rejection;
  throw new Error(`unexpected rejection in place.lua's answer: ${String(v)}`);
}
