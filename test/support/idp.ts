import { once } from 'node:events';
import { createServer } from 'node:http';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/**
 * A stand-in identity provider over real HTTP: keys generated here, a JWKS served from them (the
 * test chooses which keys it publishes, as a provider does while it rotates), a count of fetches.
 */
export interface Idp {
  jwksUrl: string;
  /** how many times the JWKS was fetched */
  fetches(): number;
  /** generates a key; it is not published until `publish` names it */
  addKey(kid: string, alg: 'RS256' | 'ES256' | 'RS512'): Promise<void>;
  /** the JWKS serves exactly these keys from now on */
  publish(...kids: string[]): void;
  /** a token signed by `kid`'s key, expiring in an hour unless the claims say otherwise */
  sign(kid: string, claims: Record<string, unknown>, header?: { alg?: string; kid?: string | null }): Promise<string>;
  publicPem(kid: string): Promise<string>;
  close(): Promise<void>;
}

interface Key {
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

export async function startIdp(): Promise<Idp> {
  const keys = new Map<string, Key>();
  let published: JWK[] = [];
  let fetches = 0;
  const server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.statusCode = 404;
      return res.end();
    }
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: published }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const key = (kid: string) => {
    const k = keys.get(kid);
    if (!k) throw new Error(`no key ${kid}`);
    return k;
  };
  return {
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => fetches,
    async addKey(kid, alg) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      keys.set(kid, { alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } });
    },
    publish(...kids) {
      published = kids.map((kid) => key(kid).jwk);
    },
    async sign(kid, claims, header = {}) {
      const k = key(kid);
      const h = { alg: header.alg ?? k.alg, ...(header.kid === null ? {} : { kid: header.kid ?? kid }) };
      const jwt = new SignJWT(claims).setProtectedHeader(h).setIssuedAt();
      return ('exp' in claims ? jwt : jwt.setExpirationTime('1h')).sign(k.privateKey);
    },
    publicPem: async (kid) => exportSPKI(key(kid).publicKey),
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
