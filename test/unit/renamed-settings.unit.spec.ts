import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const load = (env: Record<string, string>) => loadConfig({ NODE_ENV: 'test', ...env });

describe('the single writer settings under their old DECIDER_* names', () => {
  it('reads each old name into its WRITER_* setting, with a warning naming both', () => {
    const c = load({ DECIDER_MAX_WAIT_MS: '35', DECIDER_COMMIT_MS: '0', DECIDER_THREAD: '0' });
    expect([c.WRITER_MAX_WAIT_MS, c.WRITER_COMMIT_MS, c.WRITER_THREAD]).toEqual([35, 0, false]);
    expect(c.renamed).toEqual([
      'DECIDER_MAX_WAIT_MS is now called WRITER_MAX_WAIT_MS; the old name will be refused in a later release',
      'DECIDER_COMMIT_MS is now called WRITER_COMMIT_MS; the old name will be refused in a later release',
      'DECIDER_THREAD is now called WRITER_THREAD; the old name will be refused in a later release',
    ]);
  });

  it('takes the new name where both are set, and says the old one is ignored', () => {
    const c = load({ DECIDER_COMMIT_MS: '0', WRITER_COMMIT_MS: '250' });
    expect(c.WRITER_COMMIT_MS).toBe(250);
    expect(c.renamed).toEqual([
      'DECIDER_COMMIT_MS is ignored: WRITER_COMMIT_MS is set too (DECIDER_COMMIT_MS is its old name, refused in a later release)',
    ]);
  });

  it('warns of nothing when only the new names are used', () => {
    const c = load({ WRITER_MAX_WAIT_MS: '50', WRITER_THREAD: 'false' });
    expect([c.WRITER_MAX_WAIT_MS, c.WRITER_THREAD, c.renamed]).toEqual([50, false, []]);
  });

  it('refuses a bad value under an old name, naming the name it was given as', () => {
    expect(() => load({ DECIDER_COMMIT_MS: 'soon' })).toThrow(ConfigError);
    expect(() => load({ DECIDER_COMMIT_MS: 'soon' })).toThrow(/WRITER_COMMIT_MS \(given as DECIDER_COMMIT_MS\): /);
  });
});
