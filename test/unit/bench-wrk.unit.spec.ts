import { describe, expect, it } from 'vitest';
import { wrkResult } from '../../bench/load/wrk.js';

// wrk 4.1's own summary, then the line bench/load/wrk.lua's done() writes (from a run against a
// local server that answered every 50th request 500 and every 20th 200 with errors)
const line = {
  requests: 2903,
  durationUs: 3013548,
  sent: 2924,
  reused: 0,
  non2xx: 59,
  graphqlErrors: 146,
  socketErrors: 2,
  timeouts: 1,
  p50Us: 254,
  p99Us: 205782,
  samples: 2902,
  correctedP50Us: 5618,
  correctedP99Us: 203843,
  cpuTicks: 22,
};
const stdout = (l: object) => `Running 3s test @ http://127.0.0.1:18777/graphql
  2 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    58.39ms   70.08ms 267.68ms   78.21%
    Req/Sec   488.38    242.45     0.95k    65.45%
  2903 requests in 3.01s, 578.20KB read
  Non-2xx or 3xx responses: 59
Requests/sec:    963.32
Transfer/sec:    191.87KB
${JSON.stringify(l)}
`;

describe("the bench's wrk phase result", () => {
  it('counts socket errors, timeouts, non-2xx answers and GraphQL errors in 200s, and gives latency as answered in ms', () => {
    const r = wrkResult(stdout(line));
    expect(r.requests).toBe(2903);
    expect(r.rps).toBeCloseTo(963.3, 1);
    expect(r.errors).toBe(2 + 1 + 59 + 146);
    // the percentiles with wrk's coordinated-omission correction undone, not wrk's corrected ones
    expect(r.p50).toBe(0.3);
    expect(r.p99).toBe(205.8);
    expect(r.cpuMs).toBe(220);
    expect(r.reused).toBe(0);
  });

  it('passes on tokens sent twice, for the bench to refuse a fresh phase that outran its users', () => {
    expect(wrkResult(stdout({ ...line, reused: 21 })).reused).toBe(21);
  });

  it('refuses a histogram whose samples are not the answers within the timeout (not wrk 4.1 layout)', () => {
    expect(() => wrkResult(stdout({ ...line, samples: 2903 }))).toThrow(/2903 samples for 2902 answers/);
  });

  it('refuses output without the result line, as when the script failed', () => {
    expect(() => wrkResult('/work/bench/load/wrk.lua: attempt to index a nil value\n')).toThrow(/no result line/);
    const { cpuTicks: _, ...partial } = line;
    expect(() => wrkResult(stdout(partial))).toThrow(/no number cpuTicks/);
  });
});
