import { describe, expect, it } from 'vitest';
import { verdict, type IssueRun } from '../../bench/issueSummary.js';

/** `npm run bench:issue`'s verdicts: the times, the ratio of enter with and without issuance, and what fails the run. */
const run = (over: Partial<IssueRun> = {}): IssueRun => ({
  winners: 1000,
  firstWinnerAt: 10_000,
  soldOutAt: 20_000,
  doneAt: 50_000,
  issued: 990,
  parked: 10,
  both: 0,
  neither: 0,
  calls: 1100,
  retries: 100,
  doubles: 0,
  recipientDoubles: 0,
  enter: { before: 1000, during: 950, after: 1100 },
  targetS: 48,
  ...over,
});

describe('bench:issue verdict', () => {
  it('times from the sell-out and from the first winner, calls a second over the whole span', () => {
    const v = verdict(run());
    expect(v.settleS).toBe(30);
    expect(v.spanS).toBe(40);
    expect(v.callsPerSec).toBe(27.5);
    expect(v.metTarget).toBe(true);
    expect(v.problems).toEqual([]);
  });

  it('misses the target past it, and reads never done as missed', () => {
    expect(verdict(run({ doneAt: 20_000 + 48_001 })).metTarget).toBe(false);
    expect(verdict(run({ doneAt: 20_000 + 48_000 })).metTarget).toBe(true);
    const never = verdict(run({ doneAt: null }));
    expect(never).toMatchObject({ settleS: null, spanS: null, callsPerSec: null, metTarget: false });
  });

  it('enter while issuing against the mean of the runs before and after, and the noise band they span', () => {
    const v = verdict(run());
    expect(v.enterRatio).toBeCloseTo(950 / 1050, 6);
    expect(v.enterSpread).toBeCloseTo(100 / 1050, 6);
    // within 10% of the slower quiet phase reads as no effect
    expect(v.withinNoise).toBe(true);
    expect(verdict(run({ enter: { before: 1000, during: 899, after: 1100 } })).withinNoise).toBe(false);
    expect(verdict(run({ enter: { before: 1000, during: 900, after: 1100 } })).withinNoise).toBe(true);
  });

  it('a double, a lost winner, or a winner both issued and parked fails the run', () => {
    expect(verdict(run({ doubles: 2 })).problems).toEqual(['the simulator issued 2 keys twice']);
    expect(verdict(run({ recipientDoubles: 1 })).problems).toEqual(['the simulator issued 1 winners vouchers under two keys']);
    expect(verdict(run({ issued: 989, neither: 1 })).problems).toEqual(['1 winners hold neither a voucher nor a parked issuance']);
    expect(verdict(run({ parked: 11, both: 1 })).problems).toEqual(['1 winners hold a voucher and an open parked issuance']);
    expect(verdict(run({ issued: 980 })).problems).toEqual(['980 issued and 10 parked for 1000 winners']);
  });
});
