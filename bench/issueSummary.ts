/**
 * `npm run bench:issue`'s verdicts from what one run measured: pure, so a unit test pins them.
 * Times are ms on one clock (the writer's and the issuer's events, and the bench's own polls, all
 * on this machine).
 */

export interface IssueRun {
  winners: number;
  /** the first and the last WinnerSelected of the drop (its sell-out) */
  firstWinnerAt: number;
  soldOutAt: number;
  /** when every winner was first seen issued or parked; null: not within the wait */
  doneAt: number | null;
  /** distinct winners with a GifticonIssued, and with an open parked issuance */
  issued: number;
  parked: number;
  /** winners with both, or with neither (I6 broken either way) */
  both: number;
  neither: number;
  /** provider calls the issuer made, and the retries among them */
  calls: number;
  retries: number;
  /** the simulator's own count of keys issued twice, and of recipients under two keys */
  doubles: number;
  recipientDoubles: number;
  /** fresh `enter` req/s before the drop, while the issuer worked, and after it was done */
  enter: { before: number; during: number; after: number };
  /** the issue's bound on sell-out → every winner issued or parked */
  targetS: number;
}

export interface IssueVerdict {
  /** sell-out → done, in s (null: never done) */
  settleS: number | null;
  /** first winner → done, in s */
  spanS: number | null;
  callsPerSec: number | null;
  /** enter while issuing over the mean of before and after */
  enterRatio: number;
  /** before against after: how far two runs without issuance differ in this run */
  enterSpread: number;
  /** the run's noise band: `during` within it of the slower quiet phase reads as no effect */
  withinNoise: boolean;
  metTarget: boolean;
  /** correctness: a winner lost, doubled or issued and parked at once; the bench exits 1 on any */
  problems: string[];
}

/** Differences under this share are noise on the shared machine (docs/benchmarks.md). */
export const NOISE = 0.1;

export function verdict(r: IssueRun): IssueVerdict {
  const s = (ms: number) => ms / 1000;
  const settleS = r.doneAt === null ? null : s(Math.max(0, r.doneAt - r.soldOutAt));
  const spanS = r.doneAt === null ? null : s(Math.max(0, r.doneAt - r.firstWinnerAt));
  const quiet = (r.enter.before + r.enter.after) / 2;
  const enterRatio = quiet > 0 ? r.enter.during / quiet : 0;
  const enterSpread = quiet > 0 ? Math.abs(r.enter.before - r.enter.after) / quiet : 0;
  const problems: string[] = [];
  if (r.doubles > 0) problems.push(`the simulator issued ${r.doubles} keys twice`);
  if (r.recipientDoubles > 0) problems.push(`the simulator issued ${r.recipientDoubles} winners vouchers under two keys`);
  if (r.both > 0) problems.push(`${r.both} winners hold a voucher and an open parked issuance`);
  if (r.neither > 0) problems.push(`${r.neither} winners hold neither a voucher nor a parked issuance`);
  if (r.issued + r.parked - r.both !== r.winners && r.neither === 0)
    problems.push(`${r.issued} issued and ${r.parked} parked for ${r.winners} winners`);
  return {
    settleS,
    spanS,
    callsPerSec: spanS ? r.calls / spanS : null,
    enterRatio,
    enterSpread,
    withinNoise: r.enter.during >= Math.min(r.enter.before, r.enter.after) * (1 - NOISE),
    metTarget: settleS !== null && settleS <= r.targetS,
    problems,
  };
}
