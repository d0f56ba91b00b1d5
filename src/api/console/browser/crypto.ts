import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { Buffer } from 'buffer';

/**
 * `node:crypto` for the console's receipt check: the part of it the fairness library
 * (src/domain/fairness/) calls while it verifies, on @noble's audited SHA-256 and Ed25519. The
 * bundle (../fairnessBundle.ts) puts this module where the library imports `node:crypto`, so the
 * browser runs the library's own code, not a second verifier. It must stay synchronous, as the
 * library is: WebCrypto's digest and verify are promises. What only the writer does (signing,
 * nonces) throws here.
 */

type Bytes = string | Uint8Array;
const bytesOf = (data: Bytes) => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
const encoded = (digest: Uint8Array, encoding?: string) => {
  const b = Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength);
  return encoding && encoding !== 'buffer' ? b.toString(encoding as BufferEncoding) : b;
};

function sha256Only(algorithm: string): void {
  if (algorithm.toLowerCase() !== 'sha256') throw new Error(`the receipt check hashes with SHA-256 only, not ${algorithm}`);
}

export function hash(algorithm: string, data: Bytes, encoding?: string) {
  sha256Only(algorithm);
  return encoded(sha256(bytesOf(data)), encoding);
}

export function createHash(algorithm: string) {
  sha256Only(algorithm);
  const h = sha256.create();
  const api = {
    update(data: Bytes) {
      h.update(bytesOf(data));
      return api;
    },
    digest: (encoding?: string) => encoded(h.digest(), encoding),
  };
  return api;
}

/** An Ed25519 SubjectPublicKeyInfo is this 12-byte DER prefix and the 32-byte key (RFC 8410). */
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

/** A public key from SPKI PEM, as `/.well-known/firstcome-fairness.json` publishes them: Ed25519 only. */
export function createPublicKey(pem: string): { raw: Uint8Array } {
  const der = Buffer.from(pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, ''), 'base64');
  if (der.length !== 44 || !der.subarray(0, 12).equals(ED25519_SPKI)) throw new Error('not an Ed25519 public key');
  return { raw: der.subarray(12) };
}

/** Ed25519 as node:crypto's `verify(null, …)`: strict RFC 8032 (no ZIP-215 leniency), like OpenSSL. */
export function verify(algorithm: null, data: Uint8Array, key: { raw: Uint8Array }, signature: Uint8Array): boolean {
  if (algorithm !== null) throw new Error('the receipt check verifies Ed25519 only');
  try {
    return ed25519.verify(signature, data, key.raw, { zip215: false });
  } catch {
    return false;
  }
}

const writerOnly = (name: string) => () => {
  throw new Error(`${name} is the writer's, not the receipt check's`);
};
export const createHmac = writerOnly('createHmac');
export const createPrivateKey = writerOnly('createPrivateKey');
export const sign = writerOnly('sign');
export type KeyObject = never;
