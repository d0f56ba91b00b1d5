import { describe, expect, it } from 'vitest';
import { clientOptions } from '../../src/issuer/client.js';
import { ConfigError, DEV_PROVIDER_TOKEN, loadConfig } from '../../src/config.js';

const load = (env: Record<string, string>) => loadConfig({ NODE_ENV: 'test', ...env });

describe('the provider settings', () => {
  it('default to the local simulator, with its development token flagged', () => {
    const c = load({});
    expect(c.PROVIDER_URL).toBe('http://127.0.0.1:4390');
    expect(c.PROVIDER_TOKEN).toBe(DEV_PROVIDER_TOKEN);
    expect(c.providerTokenIsDefault).toBe(true);
    expect(load({ PROVIDER_TOKEN: 'a-real-provider-token' })).toMatchObject({
      PROVIDER_TOKEN: 'a-real-provider-token',
      providerTokenIsDefault: false,
    });
  });

  it('reach the client as they are set', () => {
    const c = load({
      PROVIDER_RATE_PER_SEC: '480',
      PROVIDER_CONCURRENCY: '120',
      PROVIDER_TIMEOUT_MS: '1500',
      PROVIDER_MAX_ATTEMPTS: '6',
      PROVIDER_BUDGET_MS: '20000',
      PROVIDER_BREAKER_OPEN_MS: '2000',
    });
    expect(clientOptions(c)).toMatchObject({
      ratePerSec: 480,
      concurrency: 120,
      timeoutMs: 1500,
      maxAttempts: 6,
      budgetMs: 20_000,
      breaker: { openMs: 2000 },
    });
  });

  it('refuse a bad value at start, naming the variable', () => {
    for (const [name, value] of [
      ['PROVIDER_URL', 'ftp://provider'],
      ['PROVIDER_RATE_PER_SEC', '0'],
      ['PROVIDER_CONCURRENCY', 'many'],
      ['PROVIDER_TIMEOUT_MS', '5'],
      ['PROVIDER_TOKEN', 'short'],
    ] as const) {
      expect(() => load({ [name]: value }), name).toThrow(ConfigError);
      expect(() => load({ [name]: value }), name).toThrow(new RegExp(name));
    }
  });
});
