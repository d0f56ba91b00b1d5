import { KeyObject, type webcrypto } from 'node:crypto';
import { createVerifier, TokenError } from 'fast-jwt';
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, errors } from 'jose';
import { logger } from '../logger.js';
import { claimChecks } from './claims.js';

const log = logger.child({ component: 'jwks' });
type CryptoKey = webcrypto.CryptoKey;

/** What identity providers sign with; anything else in a token's header is refused before any key is looked up. */
const ALGORITHMS = new Set(['RS256', 'ES256'] as const);
type Algorithm = 'RS256' | 'ES256';

/** Keys removed from the JWKS stop verifying within this long even if no unknown `kid` comes along. */
const REFRESH_MS = 10 * 60_000;

export interface JwksVerifier {
  /** The payload of a token signed by a key of the JWKS, or null (unknown kid, bad signature, expired, …). */
  verify(token: string): Promise<Record<string, unknown> | null>;
  close(): void;
}

export interface JwksOptions {
  url: string;
  /** least time between two fetches of the JWKS, whatever asks for them */
  cooldownMs: number;
  issuer?: string;
  audience?: string;
}

/**
 * RS256/ES256 tokens whose `kid` is in a remote JWKS. jose's remote key set fetches, caches and
 * selects the key (kid, kty, alg, use); an unknown `kid` refetches at most once per cooldown, one
 * fetch in flight at a time. fast-jwt then checks the signature with node:crypto, one verifier per
 * key, so a cached RS256 verify costs a header decode, a map lookup and the RSA check.
 */
export function createJwksVerifier(opts: JwksOptions): JwksVerifier {
  // jose starts its cooldown only after a successful fetch: a JWKS that fails would otherwise be
  // asked again by every token with a made-up kid. A failed fetch starts the same cooldown here.
  let failedAt = -Infinity;
  const guardedFetch = async (url: string, init: RequestInit): Promise<Response> => {
    if (Date.now() - failedAt < opts.cooldownMs) throw new errors.JOSEError('the JWKS failed recently; not asking again yet');
    try {
      const r = await fetch(url, init);
      if (r.status !== 200) {
        failedAt = Date.now();
        log.warn({ status: r.status }, 'JWKS fetch answered other than 200');
      }
      return r;
    } catch (err) {
      failedAt = Date.now();
      log.warn({ err: (err as Error).message }, 'JWKS fetch failed');
      throw err;
    }
  };
  const keys = createRemoteJWKSet(new URL(opts.url), {
    cooldownDuration: opts.cooldownMs,
    // refreshed in the background below, so no request ever waits for an expired cache
    cacheMaxAge: Infinity,
    [customFetch]: guardedFetch,
  } as Parameters<typeof createRemoteJWKSet>[1]);

  const verifiers = new WeakMap<CryptoKey, (token: string) => Record<string, unknown>>();
  const verifierFor = (key: CryptoKey, alg: Algorithm) => {
    let verify = verifiers.get(key);
    if (!verify) {
      verify = createVerifier({
        key: KeyObject.from(key).export({ type: 'spki', format: 'pem' }) as string,
        algorithms: [alg],
        // identity providers' clocks are not ours
        clockTolerance: 5_000,
        // a token seen before skips its signature check (RS256 and ES256 alike: node:crypto parses the
        // key's PEM on every verify); fast-jwt keeps each answer no longer than the token's exp
        cache: 1000,
        ...claimChecks(opts),
      }) as (token: string) => Record<string, unknown>;
      verifiers.set(key, verify);
    }
    return verify;
  };

  const reload = () => keys.reload().catch(() => undefined);
  void reload();
  const refresh = setInterval(reload, REFRESH_MS);
  refresh.unref();

  return {
    async verify(token) {
      let header;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        return null;
      }
      const alg = header.alg as Algorithm;
      if (!ALGORITHMS.has(alg) || typeof header.kid !== 'string') return null;
      let key: CryptoKey;
      try {
        key = await keys({ alg, kid: header.kid });
      } catch (err) {
        if (err instanceof errors.JOSEError || err instanceof TypeError) return null;
        throw err;
      }
      try {
        return verifierFor(key, alg)(token);
      } catch (err) {
        if (err instanceof TokenError) return null;
        throw err;
      }
    },
    close: () => clearInterval(refresh),
  };
}
