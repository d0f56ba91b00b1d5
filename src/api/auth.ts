import { webcrypto } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';

export interface Caller {
  userId: string;
  admin: boolean;
}

export const USER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

const keyOf = (secret: string) => new TextEncoder().encode(secret);

// Hot path: given raw bytes, jose imports a WebCrypto key on every verify (~15% of an API
// process's busy time under load); the key is imported once per secret instead.
const verifyKeys = new Map<string, Promise<webcrypto.CryptoKey>>();
function verifyKey(secret: string): Promise<webcrypto.CryptoKey> {
  let key = verifyKeys.get(secret);
  if (!key) {
    key = webcrypto.subtle.importKey('raw', keyOf(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    verifyKeys.set(secret, key);
  }
  return key;
}

/** HS256 only: `alg: none` and every other algorithm is refused; `exp` is honoured. */
export async function verifyToken(token: string, secret: string): Promise<Caller | null> {
  try {
    const { payload } = await jwtVerify(token, await verifyKey(secret), { algorithms: ['HS256'] });
    if (typeof payload.sub !== 'string' || !USER_ID.test(payload.sub)) return null;
    return { userId: payload.sub, admin: payload.role === 'admin' };
  } catch (err) {
    if (err instanceof errors.JOSEError) return null;
    throw err;
  }
}

export function bearer(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : null;
}

export async function signToken(
  secret: string,
  claims: { sub: string; role?: 'admin'; expiresIn?: string | number },
): Promise<string> {
  const jwt = new SignJWT(claims.role ? { role: claims.role } : {})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt();
  if (claims.expiresIn !== undefined) jwt.setExpirationTime(claims.expiresIn);
  return jwt.sign(keyOf(secret));
}
