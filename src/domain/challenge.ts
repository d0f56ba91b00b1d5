import type { CampaignEvent, ChallengeMode, ChallengeSetting } from './events.js';

export type { ChallengeMode, ChallengeSetting } from './events.js';

/**
 * A campaign's proof-of-work setting (issue 34): `OFF`, or `POW` at a difficulty, ALTCHA's
 * `maxnumber` (the solver tries up to that many hashes, half of them on average). It is part of the
 * campaign and lives in the log: CampaignCreated carries the first setting, CampaignChallengeSet
 * each change, and the last one in log order holds.
 */
export const CHALLENGE_OFF: ChallengeSetting = { mode: 'OFF', difficulty: null };

/**
 * Bounds of a difficulty. Below 100 a script solves it in well under a millisecond: no cost at all.
 * Above 1,000,000 a solve takes longer than a challenge lives (docs/benchmarks.md has the solve
 * times measured here; a phone was not measured, and is slower than a server core).
 */
export const DIFFICULTY_MIN = 100;
export const DIFFICULTY_MAX = 1_000_000;
/** POW without a difficulty: about 2 s on this machine's Node, a few seconds on a phone */
export const DIFFICULTY_DEFAULT = 50_000;

/** The setting an admin asked for, or why it cannot be: the reason is about `difficulty`. */
export function challengeSetting(mode: ChallengeMode, difficulty: number | null | undefined): ChallengeSetting | { invalid: string } {
  if (mode === 'OFF') return CHALLENGE_OFF;
  const d = difficulty ?? DIFFICULTY_DEFAULT;
  if (!Number.isSafeInteger(d) || d < DIFFICULTY_MIN || d > DIFFICULTY_MAX)
    return { invalid: `must be ${DIFFICULTY_MIN} .. ${DIFFICULTY_MAX.toLocaleString('en')}` };
  return { mode, difficulty: d };
}

/** The setting after one more event of the log: created once, then each CampaignChallengeSet. */
export function evolveChallenge(setting: ChallengeSetting | null, event: CampaignEvent): ChallengeSetting | null {
  switch (event.type) {
    case 'CampaignCreated':
      return setting ?? event.challenge ?? CHALLENGE_OFF;
    case 'CampaignChallengeSet':
      // a setting for a campaign not (yet) in this log changes nothing, as a close would not
      return setting ? { mode: event.mode, difficulty: event.difficulty } : setting;
    default:
      return setting;
  }
}

/** Why a solution is not accepted; the API answers each as CHALLENGE_FAILED. */
export type SolutionFault = 'malformed' | 'wrong' | 'expired' | 'other-campaign' | 'other-user' | 'reused';

export type ChallengeRejection = 'CHALLENGE_REQUIRED' | 'CHALLENGE_FAILED';

/**
 * The challenge's part of `enter`, after the campaign's own rejections (NOT_OPEN, CLOSED,
 * SOLD_OUT) and after a user already in line got their entry back: with POW on, a solution is
 * needed, and it must hold (`fault` null). null: the entry may be appended.
 */
export function judgeSolution(setting: ChallengeSetting, solution: string | null, fault: SolutionFault | null): ChallengeRejection | null {
  if (setting.mode === 'OFF') return null;
  if (solution === null) return 'CHALLENGE_REQUIRED';
  return fault === null ? null : 'CHALLENGE_FAILED';
}
