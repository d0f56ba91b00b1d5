import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import type { Config } from '../config.js';
import { claimChecks, lifeWithin } from './claims.js';
import { createJwksVerifier, type JwksVerifier } from './jwks.js';

export interface Caller {
  userId: string;
  admin: boolean;
  /** every role the token's role claim holds (`admin` among them for an admin); CODES_READ_ROLE is one */
  roles?: readonly string[];
}

export const USER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** What a token must carry besides its signature, the same for HS256 and JWKS tokens. */
export interface TokenShape {
  issuer?: string;
  audience?: string;
  /** where the admin role is: a claim name, or a dotted path such as `realm_access.roles` */
  roleClaim: string;
  /** the longest life a token may have (`exp` − `iat`), in seconds */
  maxAgeS: number;
}

export const tokenShape = (config: Config): TokenShape => ({
  issuer: config.JWT_ISSUER,
  audience: config.JWT_AUDIENCE,
  roleClaim: config.JWT_ROLE_CLAIM,
  maxAgeS: config.JWT_MAX_AGE_S,
});

const DEFAULT_SHAPE: TokenShape = { roleClaim: 'role', maxAgeS: 86_400 };

/**
 * The claim at `path`: the whole name first (Auth0's namespaced claims are URLs, dots and all),
 * then the dotted path (Keycloak's `realm_access.roles`).
 */
function claimAt(payload: Record<string, unknown>, path: string, segments: string[]): unknown {
  if (path in payload) return payload[path];
  let at: unknown = payload;
  for (const s of segments) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[s];
  }
  return at;
}

function callerOf(shape: TokenShape) {
  const segments = shape.roleClaim.split('.');
  return (payload: Record<string, unknown>): Caller | null => {
    if (typeof payload.sub !== 'string' || !USER_ID.test(payload.sub)) return null;
    if (!lifeWithin(payload, shape.maxAgeS)) return null;
    const role = claimAt(payload, shape.roleClaim, segments);
    const roles = typeof role === 'string' ? [role] : Array.isArray(role) ? role.filter((r): r is string => typeof r === 'string') : [];
    return { userId: payload.sub, admin: roles.includes('admin'), roles };
  };
}

type Verify = (token: string) => Record<string, unknown>;

// Hot path: every request verifies a token. fast-jwt checks HS256 with node:crypto's HMAC, ~8 µs
// of CPU; jose goes through WebCrypto, ~80-95 µs of CPU per verify (20,000 tokens, both on this
// machine), which was 17% of the API thread's samples in `npm run bench`.
function hs256(secret: string, shape: TokenShape): Verify {
  return createVerifier({ key: secret, algorithms: ['HS256'], ...claimChecks(shape) }) as Verify;
}

export interface Authenticator {
  /** The caller a token names, or null for any token that is not good: never throws for a bad token. */
  verify(token: string): Promise<Caller | null>;
  close(): void;
}

/**
 * HS256 signed with JWT_SECRET and, when JWT_JWKS_URL is set, RS256/ES256 signed by a key of that
 * JWKS. `alg: none` and every other algorithm is refused; `exp` is required and honoured, and a
 * token living longer than JWT_MAX_AGE_S is refused; `iss`/`aud` must match when configured. An HS256 token never reaches the JWKS keys, so an RS256 public key used as an
 * HMAC secret (alg confusion) fails the HS256 check against JWT_SECRET.
 */
export function createAuthenticator(config: Config): Authenticator {
  const shape = tokenShape(config);
  const toCaller = callerOf(shape);
  const hs = config.jwtHs256 ? hs256(config.JWT_SECRET, shape) : null;
  const jwks: JwksVerifier | null = config.JWT_JWKS_URL
    ? createJwksVerifier({
        url: config.JWT_JWKS_URL,
        cooldownMs: config.JWT_JWKS_COOLDOWN_MS,
        issuer: shape.issuer,
        audience: shape.audience,
      })
    : null;
  return {
    async verify(token) {
      try {
        if (hs) {
          try {
            return toCaller(hs(token));
          } catch (err) {
            // the HS256 path stays as cheap as it was: the JWKS is asked only about other algorithms
            if (!(jwks && err instanceof TokenError && err.code === TokenError.codes.invalidAlgorithm)) throw err;
          }
        }
        const payload = jwks ? await jwks.verify(token) : null;
        return payload && toCaller(payload);
      } catch (err) {
        if (err instanceof TokenError) return null;
        throw err;
      }
    },
    close: () => jwks?.close(),
  };
}

const legacy = new Map<string, Verify>();
const defaultCaller = callerOf(DEFAULT_SHAPE);

/** HS256 only, with the default shape (`role: "admin"`). The server uses createAuthenticator. */
export async function verifyToken(token: string, secret: string): Promise<Caller | null> {
  let verify = legacy.get(secret);
  if (!verify) legacy.set(secret, (verify = hs256(secret, DEFAULT_SHAPE)));
  try {
    return defaultCaller(verify(token));
  } catch (err) {
    if (err instanceof TokenError) return null;
    throw err;
  }
}

export function bearer(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : null;
}

/** Puts `value` at the role claim's place: `role`, or nested objects for a dotted path. */
function withRole(roleClaim: string, value: unknown): Record<string, unknown> {
  let out: unknown = value;
  for (const s of roleClaim.split('.').reverse()) out = { [s]: out };
  return out as Record<string, unknown>;
}

/**
 * An HS256 token for local use, shaped as the server expects it (JWT_ISSUER, JWT_AUDIENCE and
 * JWT_ROLE_CLAIM when a `shape` is given; a dotted role claim holds `["admin"]`).
 */
export async function signToken(
  secret: string,
  claims: { sub: string; role?: string | readonly string[]; expiresIn?: string | number },
  shape: TokenShape = DEFAULT_SHAPE,
): Promise<string> {
  // expiresIn: a duration such as '1h' or '7d', or milliseconds
  const sign = createSigner({
    key: secret,
    algorithm: 'HS256',
    expiresIn: claims.expiresIn,
    ...(shape.issuer ? { iss: shape.issuer } : {}),
    ...(shape.audience ? { aud: shape.audience } : {}),
  });
  // one role: a string (an array under a dotted claim); more than one: an array
  const given = claims.role === undefined ? [] : typeof claims.role === 'string' ? [claims.role] : [...claims.role];
  const role = given.length === 0 ? {} : withRole(shape.roleClaim, given.length === 1 && !shape.roleClaim.includes('.') ? given[0] : given);
  return sign({ sub: claims.sub, ...role });
}
