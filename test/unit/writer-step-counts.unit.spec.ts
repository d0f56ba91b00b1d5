import { describe, expect, it } from 'vitest';
import { checkSteps, WriterSteps } from '../../projections/redis-ordering/steps.js';

/** The single writer's count of its steps per campaign, against what Redis answers (projections/redis-ordering/steps.ts). */
describe("the writer's step counts", () => {
  it('learn a campaign first seen, then expect one more per step', () => {
    const s = new WriterSteps();
    expect(checkSteps(s, 0, [{ campaignId: 'c', seq: 7 }])).toEqual([]);
    expect(s.of(0, 'c')).toBe(7);
    expect(
      checkSteps(s, 0, [
        { campaignId: 'c', seq: 8 },
        { campaignId: 'c', seq: 9 },
      ]),
    ).toEqual([]);
    expect(s.of(0, 'c')).toBe(9);
  });

  it('find a campaign behind: a script that refused (-1), or one re-created from nothing (1), while the others go on', () => {
    const s = new WriterSteps();
    checkSteps(s, 0, [
      { campaignId: 'a', seq: 5 },
      { campaignId: 'b', seq: 3 },
      { campaignId: 'c', seq: 2 },
    ]);
    expect(
      checkSteps(s, 0, [
        { campaignId: 'a', seq: -1 },
        { campaignId: 'b', seq: 1 },
        { campaignId: 'c', seq: 3 },
      ]),
    ).toEqual(['a', 'b']);
    expect(s.of(0, 'c')).toBe(3);
    expect(s.of(0, 'a')).toBe(5);
  });

  it('are kept per partition and forgotten by a rebuild of one', () => {
    const s = new WriterSteps();
    checkSteps(s, 0, [{ campaignId: 'a', seq: 5 }]);
    checkSteps(s, 1, [{ campaignId: 'b', seq: 2 }]);
    s.forget(0);
    expect(s.of(0, 'a')).toBeNull();
    expect(s.known(1)).toEqual([['b', 2]]);
    // after the rebuild the count starts over from what Redis answers
    expect(checkSteps(s, 0, [{ campaignId: 'a', seq: 1 }])).toEqual([]);
  });
});
