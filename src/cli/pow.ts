import { createHash } from 'node:crypto';
import { solveChallenge } from 'altcha-lib/v1';

/**
 * The client's side of a proof-of-work challenge, as an ALTCHA widget does it: find the number,
 * then send ALTCHA's payload (base64 JSON) as `enter`'s `solution`. For the demo's crowd, the
 * bench and the solver script; a browser runs the widget instead.
 */
export interface ChallengeShape {
  algorithm: string;
  challenge: string;
  salt: string;
  signature: string;
  maxnumber?: number | null;
}

/** The solution of `c` as `enter` takes it; throws when no number up to maxnumber solves it. */
export async function solvePow(c: ChallengeShape): Promise<string> {
  const found = await solveChallenge(c.challenge, c.salt, c.algorithm, c.maxnumber ?? undefined).promise;
  if (!found) throw new Error('challenge not solved: no number up to maxnumber gives its hash');
  return powSolution(c, found.number);
}

/** ALTCHA's payload for `number` as the answer to `c` (right or not: tests send wrong ones too). */
export function powSolution(c: ChallengeShape, number: number): string {
  return Buffer.from(
    JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number, salt: c.salt, signature: c.signature }),
  ).toString('base64');
}

/**
 * The same search with node:crypto, synchronous: ~20 times faster than altcha's WebCrypto solver
 * in Node (`npm run bench:pow`). For a crowd of scripted users that must solve thousands of
 * challenges within their minute (the bench, the demo); a browser has only the widget's.
 */
export function solvePowFast(c: ChallengeShape): string {
  if (c.algorithm !== 'SHA-256') throw new Error(`unsupported algorithm ${c.algorithm}`);
  const max = c.maxnumber ?? 1_000_000;
  for (let n = 0; n <= max; n++) {
    if (
      createHash('sha256')
        .update(c.salt + n)
        .digest('hex') === c.challenge
    )
      return powSolution(c, n);
  }
  throw new Error('challenge not solved: no number up to maxnumber gives its hash');
}
