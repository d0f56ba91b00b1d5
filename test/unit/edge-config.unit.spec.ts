import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress } from '../../src/api/clientLimit.js';
import { ConfigError, loadConfig } from '../../src/config.js';

const load = (env: Record<string, string>) => loadConfig({ NODE_ENV: 'test', ...env });
const request = (remoteAddress: string, forwardedFor?: string) =>
  ({
    socket: { remoteAddress },
    connection: { remoteAddress },
    headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {},
  }) as unknown as IncomingMessage;

describe('the edge configuration', () => {
  it('has defaults that let the bench and the demo through: limits on, no cross-origin access, no proxy trusted', () => {
    const c = load({});
    expect(c.CORS_ORIGINS).toBeUndefined();
    expect(c.TRUST_PROXY).toBeUndefined();
    expect(c.RATE_LIMIT_IP_PER_SEC).toBe(20);
    expect([c.RATE_LIMIT_IP_CEILING_PER_SEC, c.RATE_LIMIT_USER_COST_PER_SEC, c.RATE_LIMIT_ADMIN_COST_PER_SEC, c.JWT_MAX_AGE_S]).toEqual([
      2000, 40, 400, 86_400,
    ]);
    expect(c.METRICS_TOKEN).toBeUndefined();
    expect(c.JWT_ROLE_CLAIM).toBe('role');
    expect([
      c.GRAPHQL_MAX_ALIASES,
      c.GRAPHQL_MAX_DEPTH,
      c.GRAPHQL_MAX_TOKENS,
      c.GRAPHQL_MAX_DIRECTIVES,
      c.GRAPHQL_MAX_COST,
      c.GRAPHQL_MAX_BODY_BYTES,
    ]).toEqual([15, 8, 1000, 10, 100_000, 65_536]);
  });

  it('reads CORS_ORIGINS as a list and names it when an entry is not an origin', () => {
    expect(load({ CORS_ORIGINS: 'https://app.example, http://localhost:5173' }).CORS_ORIGINS).toEqual([
      'https://app.example',
      'http://localhost:5173',
    ]);
    for (const bad of ['app.example', 'https://app.example/path', '*']) {
      expect(() => load({ CORS_ORIGINS: bad }), bad).toThrow(/CORS_ORIGINS/);
    }
  });

  it('reads TRUST_PROXY as a hop count, true, or addresses, and names it when it is none of these', () => {
    expect(load({ TRUST_PROXY: '1' }).TRUST_PROXY).toBe(1);
    expect(load({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true);
    expect(load({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).TRUST_PROXY).toEqual(['loopback', '10.0.0.0/8']);
    expect(() => load({ TRUST_PROXY: 'not-an-address' })).toThrow(/TRUST_PROXY/);
  });

  it('needs JWT_SECRET in production unless a JWKS is set, and then accepts no HS256 token', () => {
    expect(() => load({ NODE_ENV: 'production' })).toThrow(ConfigError);
    const c = load({ NODE_ENV: 'production', JWT_JWKS_URL: 'https://idp.example/jwks.json' });
    expect(c.jwtHs256).toBe(false);
    expect(c.jwtSecretIsDefault).toBe(false);
    expect(load({ NODE_ENV: 'production', JWT_JWKS_URL: 'https://idp.example/jwks.json', JWT_SECRET: 'x'.repeat(16) }).jwtHs256).toBe(true);
    expect(() => load({ JWT_JWKS_URL: 'ftp://idp.example/jwks.json' })).toThrow(/JWT_JWKS_URL/);
  });
});

describe('the client address', () => {
  it("is the socket's when no proxy is trusted, whatever X-Forwarded-For claims", () => {
    expect(clientAddress(undefined)(request('192.0.2.1', '198.51.100.7'))).toBe('192.0.2.1');
  });

  it('comes from X-Forwarded-For through the trusted hops only', () => {
    const viaLoopback = clientAddress(['loopback']);
    expect(viaLoopback(request('127.0.0.1', '198.51.100.7'))).toBe('198.51.100.7');
    // a client's own X-Forwarded-For entry is not believed past the one hop that is trusted
    expect(viaLoopback(request('127.0.0.1', '6.6.6.6, 198.51.100.7'))).toBe('198.51.100.7');
    expect(viaLoopback(request('192.0.2.1', '198.51.100.7'))).toBe('192.0.2.1');
    expect(clientAddress(1)(request('192.0.2.1', '6.6.6.6, 198.51.100.7'))).toBe('198.51.100.7');
    expect(clientAddress(true)(request('192.0.2.1', '6.6.6.6, 198.51.100.7'))).toBe('6.6.6.6');
  });
});
