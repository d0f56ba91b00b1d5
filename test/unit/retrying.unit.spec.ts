import { describe, expect, it } from 'vitest';
import { BACKOFF, backoffMs, RepeatFilter } from '../../src/retrying.js';

describe('backoff of a failing component', () => {
  it('doubles from half a second and stops at 30 s, ±20%', () => {
    const mid = () => 0.5; // no jitter
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => backoffMs(n, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
    expect(backoffMs(3, () => 0)).toBe(1600);
    expect(backoffMs(3, () => 1)).toBe(2400);
    for (let n = 1; n < 100; n++) expect(backoffMs(n)).toBeLessThanOrEqual(BACKOFF.capMs);
  });
});

describe('the same error once per minute, with a count', () => {
  it('logs the first occurrence, holds back the rest of the minute, then logs with how many were held', () => {
    let now = 0;
    const f = new RepeatFilter(60_000, () => now);
    const logged: (number | null)[] = [];
    for (let s = 0; s < 125; s++) {
      now = s * 1000;
      logged.push(f.admit('relation "winners" does not exist')?.held ?? null);
    }
    const lines = logged.map((h, s) => [s, h] as const).filter(([, h]) => h !== null);
    expect(lines).toEqual([
      [0, 0],
      [60, 59],
      [120, 59],
    ]);
  });

  it('keeps different errors apart, and settle tells what no line has told yet', () => {
    let now = 0;
    const f = new RepeatFilter(60_000, () => now);
    expect(f.admit('a')).toEqual({ held: 0 });
    expect(f.admit('b')).toEqual({ held: 0 });
    now = 10_000;
    expect(f.admit('a')).toBeNull();
    expect(f.admit('a')).toBeNull();
    expect(f.settle('a')).toBe(2);
    expect(f.admit('a')).toEqual({ held: 0 }); // forgotten: a new episode starts with a line
  });
});
