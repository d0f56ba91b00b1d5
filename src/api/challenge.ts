import { createHmac } from 'node:crypto';
import { createChallenge, extractParams, verifySolution } from 'altcha-lib/v1';
import type { ChallengeSetting, SolutionFault } from '../domain/challenge.js';

/**
 * ALTCHA v1 proof-of-work challenges (issue 34), signed with an HMAC key, so the server keeps no
 * state per challenge: a challenge names its campaign, its user and its expiry in the salt's
 * parameters, which the signature covers. Only a solution's spending is kept (EnterGate.spendSolution).
 */

/** A challenge in ALTCHA's v1 shape (CONTRACT.md's `Challenge`). */
export interface PowChallenge {
  algorithm: string;
  challenge: string;
  salt: string;
  signature: string;
  maxnumber: number;
}

/** A solution that holds: the challenge it solves (what names it once spent) and until when it could be used. */
export interface CheckedSolution {
  challenge: string;
  expiresAt: number;
}

/** How long a challenge may be solved and used: ALTCHA's `expires` is whole seconds. */
export const CHALLENGE_TTL_MS = 60_000;
const ALGORITHM = 'SHA-256';
/** A solution is ALTCHA's payload as base64 JSON: a few hundred characters */
export const SOLUTION_MAX_CHARS = 2048;

export class PowChallenges {
  readonly stats = { issued: 0, solved: 0, refused: 0, reused: 0 };
  private readonly hmacKey: string;

  /** `secret`: CHALLENGE_SECRET; the key altcha signs with is derived from it, for this use alone. */
  constructor(secret: string) {
    this.hmacKey = createHmac('sha256', secret).update('firstcome altcha v1 challenge key').digest('hex');
  }

  /** A fresh challenge for this campaign and user; null when the campaign asks for none. */
  async issue(campaignId: string, userId: string, setting: ChallengeSetting, now = Date.now()): Promise<PowChallenge | null> {
    if (setting.mode === 'OFF' || setting.difficulty === null) return null;
    const c = await createChallenge({
      hmacKey: this.hmacKey,
      algorithm: ALGORITHM,
      maxnumber: setting.difficulty,
      expires: new Date(now + CHALLENGE_TTL_MS),
      params: { c: campaignId, u: userId },
    });
    this.stats.issued++;
    return {
      algorithm: c.algorithm,
      challenge: c.challenge,
      salt: c.salt,
      signature: c.signature,
      maxnumber: c.maxnumber ?? setting.difficulty,
    };
  }

  /**
   * Whether `solution` solves a challenge this server signed for this campaign and user, still
   * unexpired: the solution's challenge, or why not. Whether it was used before is the gate's to
   * say (spendSolution).
   */
  async check(solution: string, campaignId: string, userId: string, now = Date.now()): Promise<CheckedSolution | { fault: SolutionFault }> {
    const payload = parsePayload(solution);
    if (!payload) return { fault: 'malformed' };
    // checkExpires off: altcha skips the check when the salt has no expiry, and the signature
    // alone tells a forged one; the expiry is read below, required
    if (!(await verifySolution(payload, this.hmacKey, false).catch(() => false))) return { fault: 'wrong' };
    const params = extractParams(payload);
    const expiresAt = Number(params.expires) * 1000;
    if (!Number.isFinite(expiresAt) || expiresAt <= now) return { fault: 'expired' };
    if (params.c !== campaignId) return { fault: 'other-campaign' };
    if (params.u !== userId) return { fault: 'other-user' };
    return { challenge: payload.challenge, expiresAt };
  }
}

interface Payload {
  algorithm: 'SHA-256';
  challenge: string;
  number: number;
  salt: string;
  signature: string;
}

/** ALTCHA's payload, decoded and shaped as this server issues them (SHA-256 only), or null. */
function parsePayload(solution: string): Payload | null {
  if (solution.length > SOLUTION_MAX_CHARS) return null;
  let p: unknown;
  try {
    p = JSON.parse(Buffer.from(solution, 'base64').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof p !== 'object' || p === null) return null;
  const { algorithm, challenge, number, salt, signature } = p as Record<string, unknown>;
  if (algorithm !== ALGORITHM || typeof challenge !== 'string' || !/^[0-9a-f]{64}$/.test(challenge)) return null;
  if (typeof salt !== 'string' || typeof signature !== 'string' || !Number.isSafeInteger(number) || (number as number) < 0) return null;
  return { algorithm, challenge, number: number as number, salt, signature };
}
