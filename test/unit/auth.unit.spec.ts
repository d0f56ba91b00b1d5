import { SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAuthenticator, signToken, tokenShape } from '../../src/api/auth.js';
import { loadConfig } from '../../src/config.js';

const SECRET = 'unit-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);
const config = (env: Record<string, string> = {}) => loadConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET, ...env });
const hs = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key);

describe('who a token names', () => {
  it('makes an admin of role "admin" by default, and of nothing else', async () => {
    const auth = createAuthenticator(config());
    expect(await auth.verify(await hs({ sub: 'boss', role: 'admin' }))).toEqual({ userId: 'boss', admin: true, roles: ['admin'] });
    expect(await auth.verify(await hs({ sub: 'al', role: 'user' }))).toEqual({ userId: 'al', admin: false, roles: ['user'] });
    expect(await auth.verify(await hs({ sub: 'al', role: ['admin'] }))).toEqual({ userId: 'al', admin: true, roles: ['admin'] });
    expect(await auth.verify(await hs({ sub: 'al', realm_access: { roles: ['admin'] } }))).toEqual({
      userId: 'al',
      admin: false,
      roles: [],
    });
  });

  it('follows a dotted JWT_ROLE_CLAIM into nested claims, an array or a string', async () => {
    const auth = createAuthenticator(config({ JWT_ROLE_CLAIM: 'realm_access.roles' }));
    expect(await auth.verify(await hs({ sub: 'kc', realm_access: { roles: ['offline_access', 'admin'] } }))).toEqual({
      userId: 'kc',
      admin: true,
      roles: ['offline_access', 'admin'],
    });
    expect(await auth.verify(await hs({ sub: 'kc', realm_access: { roles: 'admin' } }))).toEqual({
      userId: 'kc',
      admin: true,
      roles: ['admin'],
    });
    expect(await auth.verify(await hs({ sub: 'kc', realm_access: { roles: ['administrator'] } }))).toEqual({
      userId: 'kc',
      admin: false,
      roles: ['administrator'],
    });
    expect(await auth.verify(await hs({ sub: 'kc', realm_access: 'admin' }))).toEqual({ userId: 'kc', admin: false, roles: [] });
    expect(await auth.verify(await hs({ sub: 'kc', role: 'admin' }))).toEqual({ userId: 'kc', admin: false, roles: [] });
  });

  it('reads a namespaced claim whose name has dots in it (Auth0) as one claim', async () => {
    const claim = 'https://firstcome.example/roles';
    const auth = createAuthenticator(config({ JWT_ROLE_CLAIM: claim }));
    expect(await auth.verify(await hs({ sub: 'a0', [claim]: ['admin'] }))).toEqual({ userId: 'a0', admin: true, roles: ['admin'] });
  });

  it('requires iss and aud to be there and to match when JWT_ISSUER and JWT_AUDIENCE are set', async () => {
    const auth = createAuthenticator(config({ JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'firstcome' }));
    expect(await auth.verify(await hs({ sub: 'al', iss: 'https://idp.example', aud: 'firstcome' }))).toEqual({
      userId: 'al',
      admin: false,
      roles: [],
    });
    expect(await auth.verify(await hs({ sub: 'al', iss: 'https://idp.example', aud: ['other', 'firstcome'] }))).toEqual({
      userId: 'al',
      admin: false,
      roles: [],
    });
    for (const claims of [
      { iss: 'https://evil.example', aud: 'firstcome' },
      { iss: 'https://idp.example', aud: 'other' },
      { aud: 'firstcome' },
      { iss: 'https://idp.example' },
    ]) {
      expect(await auth.verify(await hs({ sub: 'al', ...claims })), JSON.stringify(claims)).toBeNull();
    }
  });

  it('refuses a bad signature, alg none, another algorithm, an expired token and a bad sub', async () => {
    const auth = createAuthenticator(config());
    const bad = [
      await new SignJWT({ sub: 'al' })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode('another-secret-of-enough-length')),
      new UnsecuredJWT({ sub: 'al', role: 'admin' }).encode(),
      await new SignJWT({ sub: 'al' }).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(SECRET.repeat(3))),
      await new SignJWT({ sub: 'al' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
        .sign(key),
      await hs({ sub: 'has space' }),
      await hs({}),
      'garbage',
    ];
    for (const t of bad) expect(await auth.verify(t), t.slice(0, 30)).toBeNull();
  });

  it('refuses a token with no exp, and one living longer than JWT_MAX_AGE_S (exp - iat, or exp - now without iat)', async () => {
    const auth = createAuthenticator(config({ JWT_MAX_AGE_S: '3600' }));
    const sign = (build: (j: SignJWT) => SignJWT) => build(new SignJWT({ sub: 'al' }).setProtectedHeader({ alg: 'HS256' })).sign(key);
    expect(await auth.verify(await sign((j) => j.setIssuedAt()))).toBeNull();
    expect(await auth.verify(await sign((j) => j.setIssuedAt().setExpirationTime('2h')))).toBeNull();
    expect(await auth.verify(await sign((j) => j.setExpirationTime('2h')))).toBeNull();
    // issued long ago, expiring soon: a life of 25 h however little is left
    const now = Math.floor(Date.now() / 1000);
    expect(await auth.verify(await sign((j) => j.setIssuedAt(now - 24 * 3600).setExpirationTime(now + 3600)))).toBeNull();
    expect(await auth.verify(await sign((j) => j.setIssuedAt().setExpirationTime('59m')))).toEqual({
      userId: 'al',
      admin: false,
      roles: [],
    });
    expect(await auth.verify(await sign((j) => j.setExpirationTime('59m')))).toEqual({ userId: 'al', admin: false, roles: [] });
  });

  it('mints local tokens the configured server accepts, role at the configured place', async () => {
    const c = config({ JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'firstcome', JWT_ROLE_CLAIM: 'realm_access.roles' });
    const auth = createAuthenticator(c);
    expect(await auth.verify(await signToken(SECRET, { sub: 'boss', role: 'admin', expiresIn: '1h' }, tokenShape(c)))).toEqual({
      userId: 'boss',
      admin: true,
      roles: ['admin'],
    });
    expect(await auth.verify(await signToken(SECRET, { sub: 'al', expiresIn: '1h' }, tokenShape(c)))).toEqual({
      userId: 'al',
      admin: false,
      roles: [],
    });
    // every --role of `npm run token`, in the claim as an array
    const both = await signToken(SECRET, { sub: 'boss', role: ['admin', 'codes:read'], expiresIn: '1h' }, tokenShape(c));
    expect(await auth.verify(both)).toEqual({ userId: 'boss', admin: true, roles: ['admin', 'codes:read'] });
    // a token without the configured iss/aud is not one of this server's
    expect(await auth.verify(await signToken(SECRET, { sub: 'boss', role: 'admin', expiresIn: '1h' }))).toBeNull();
  });
});
