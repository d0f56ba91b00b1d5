import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolated, type Isolated } from '../support/app.js';
import { spawnDemo } from '../support/demo.js';

/**
 * `npm run demo -- --issuance provider`, as a person runs it: the demo starts its own provider
 * simulator and firstcome, sends a small crowd, waits until every winner is issued or parked, and
 * exits 0 only when I1–I3, I6 (one voucher or one open parked issuance per winner, no key issued
 * twice) and each winner's myEntry against the simulator's books all hold.
 */
let iso: Isolated;
beforeAll(async () => {
  iso = await isolated('demo-provider');
});
afterAll(async () => {
  await iso?.cleanup();
});

/** The value of a summary row (`measure   value`). */
const row = (out: string, name: string): string | undefined =>
  new RegExp(`^${name.replace(/[()`]/g, '\\$&')}\\s{2,}(.+)$`, 'm').exec(out)?.[1]?.trim();

describe('demo --issuance provider', () => {
  it('issues or parks every winner through the simulator, with faults, and passes its checks', async () => {
    // faults far above the default's few %, so a crowd this small still retries and parks some
    const args = ['--users', '60', '--stock', '20', '--connections', '8', '--timeout', '90'];
    args.push('--issuance', 'provider', '--provider-latency-ms', '20', '--provider-errors', '0.2');
    args.push('--provider-timeouts', '0.05', '--provider-permanent', '0.25');
    const { child: demo, output } = spawnDemo(args, iso.env);
    try {
      const [code] = (await once(demo, 'exit')) as [number | null];
      expect(code, output()).toBe(0);
    } finally {
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
    const out = output();
    expect(out).toContain('all invariants hold');
    expect(out).not.toMatch(/^\s+FAIL\s/m);
    for (const check of [
      'PASS  I1 winners == min(stock, entrants)',
      'PASS  I6 every winner holds exactly one voucher or one open parked issuance',
      'PASS  I6 the simulator issued no key twice (doubles 0, winners under two keys 0)',
      "PASS  each winner's myEntry code is the simulator's voucher for them",
    ])
      expect(out).toContain(check);

    expect(row(out, 'winners (log)')).toBe('20');
    const issued = Number(row(out, '  of them issued by the provider'));
    const parked = Number(row(out, '  of them parked (open, `parked` view)'));
    expect(issued + parked).toBe(20);
    // a quarter of the winners refused for good: with 20 of them, none parked is a 0.3% chance
    expect(parked).toBeGreaterThan(0);
    expect(issued).toBeGreaterThan(0);
    // the faults did happen, and were retried
    expect(Number(row(out, '  retries'))).toBeGreaterThan(0);
    // the simulator's books: a voucher per issued winner (at most a parked one's answer lost too), no double
    const [vouchers, keys, doubles] = row(out, 'simulator: vouchers / keys / doubles')!.split(' / ').map(Number);
    expect(doubles).toBe(0);
    expect(vouchers).toBe(keys);
    expect(vouchers).toBeGreaterThanOrEqual(issued);
    expect(out).toContain(`(${issued} of ${issued}; parked read FAILED: ${parked} of ${parked})`);
  });
});
