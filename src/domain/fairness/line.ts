import { createHmac, createPrivateKey, createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto';

/**
 * The strings of the contract's fairness proofs: a line's leaf, a user's nonce, a signed head.
 * Pure apart from node:crypto; the writer, the read side and the verifier all call these.
 */

/** A head of a campaign's line as the writer signed it (hex root, base64 Ed25519 signature). */
export interface SignedHead {
  campaignId: string;
  size: number;
  root: string;
  at: string;
  keyId: string;
  signature: string;
}

/** `<campaignId>\n<position>\n<ticket>\n<hex SHA-256 of "<userId>\n<nonce>">`: the line's leaf at index position − 1. */
export function leafOf(campaignId: string, position: number, ticket: string, userId: string, nonce: string): string {
  const who = hash('sha256', `${userId}\n${nonce}`, 'hex');
  return `${campaignId}\n${position}\n${ticket}\n${who}`;
}

/** The leaf's fields; null when it is not a leaf string. */
export function parseLeaf(leaf: string): { campaignId: string; position: number; ticket: string; who: string } | null {
  const m = /^([a-z0-9-]{1,64})\n([1-9]\d{0,9})\n(\d+-\d+)\n([0-9a-f]{64})$/.exec(leaf);
  return m ? { campaignId: m[1]!, position: Number(m[2]), ticket: m[3]!, who: m[4]! } : null;
}

/** The string a head's signature covers. */
export function headMessage(h: Pick<SignedHead, 'campaignId' | 'size' | 'root' | 'at'>): string {
  return `firstcome-head\n${h.campaignId}\n${h.size}\n${h.root}\n${h.at}`;
}

/** A head signing key, as FAIRNESS_KEY gives it: `kid:base64(PKCS#8 DER of an Ed25519 private key)`. */
export class FairnessKey {
  readonly publicKey: KeyObject;
  private readonly privateKey: KeyObject;
  /** the per-campaign nonce secrets, derived once each */
  private readonly secrets = new Map<string, Buffer>();
  private readonly seed: Buffer;

  constructor(
    readonly keyId: string,
    der: Buffer,
  ) {
    this.privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    if (this.privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the fairness key must be an Ed25519 key');
    this.publicKey = createPublicKey(this.privateKey);
    this.seed = createHmac('sha256', der).update('firstcome-fairness-nonce').digest();
  }

  /** `kid:base64` → key; throws naming what is wrong (never the key itself). */
  static parse(spec: string): FairnessKey {
    const i = spec.indexOf(':');
    const keyId = spec.slice(0, i);
    if (i < 1 || !/^[A-Za-z0-9._-]{1,64}$/.test(keyId)) throw new Error('expected kid:base64(PKCS#8 DER of an Ed25519 private key)');
    try {
      return new FairnessKey(keyId, Buffer.from(spec.slice(i + 1), 'base64'));
    } catch {
      throw new Error('expected kid:base64(PKCS#8 DER of an Ed25519 private key)');
    }
  }

  /** The user's nonce in a campaign: HMAC under the campaign's secret (itself an HMAC of the key), so a replay reproduces it. */
  nonce(campaignId: string, userId: string): string {
    let secret = this.secrets.get(campaignId);
    if (!secret) {
      secret = createHmac('sha256', this.seed).update(campaignId).digest();
      if (this.secrets.size > 10_000) this.secrets.clear();
      this.secrets.set(campaignId, secret);
    }
    return createHmac('sha256', secret).update(userId).digest('hex').slice(0, 32);
  }

  sign(h: Pick<SignedHead, 'campaignId' | 'size' | 'root' | 'at'>): SignedHead {
    const signature = sign(null, Buffer.from(headMessage(h), 'utf8'), this.privateKey).toString('base64');
    return { campaignId: h.campaignId, size: h.size, root: h.root, at: h.at, keyId: this.keyId, signature };
  }

  publicPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }
}

/** Is the head's signature good under one of these public keys (SPKI PEM by key id)? */
export function verifyHead(h: SignedHead, keys: ReadonlyMap<string, string>): boolean {
  const pem = keys.get(h.keyId);
  if (!pem || typeof h.signature !== 'string') return false;
  try {
    return verify(null, Buffer.from(headMessage(h), 'utf8'), createPublicKey(pem), Buffer.from(h.signature, 'base64'));
  } catch {
    return false;
  }
}
