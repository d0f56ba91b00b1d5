import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { pooledRandom } from './pooledRandom.js';

/**
 * Gifticon codes at rest: AES-256-GCM under the campaign's data key. A sealed code is one string,
 * `fcs1.<keyId>.<base64url(iv ‖ ciphertext ‖ tag)>`, so every record that holds one names its key.
 * The campaign id is the additional data: a code sealed for one campaign does not open as another's.
 *
 * The data keys themselves are wrapped the same way by a key-encryption key of the key ring
 * (CODE_KEYS); src/infra/codeKeys/ keeps them. Pure but for the random IVs: `node:crypto` only.
 */
export const SEALED_PREFIX = 'fcs1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;
/** A key id: what the sealed string and the key tables name a key by (no `.`, which separates the parts). */
export const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface DataKey {
  /** names the key in every sealed code (KEY_ID) */
  id: string;
  campaignId: string;
  /** 32 bytes */
  key: Buffer;
}

/** A code that cannot be opened: the key is gone (shredded), another one, or the record was altered. */
export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

const aadOf = (campaignId: string) => Buffer.from(`firstcome-code\n${campaignId}`, 'utf8');

function encrypt(key: Buffer, plaintext: Buffer, aad: Buffer): string {
  // a fresh IV for every seal, from the pooled CSPRNG: a randomBytes call was ~12 µs of each winner
  const iv = pooledRandom(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

function decrypt(key: Buffer, payload: string, aad: Buffer): Buffer {
  const raw = Buffer.from(payload, 'base64url');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new SealError('a sealed value too short to hold its IV and tag');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new SealError('the sealed value does not open with this key (another key, or altered)');
  }
}

/** Seals a code under the campaign's data key. */
export function sealCode(dk: DataKey, code: string): string {
  return `${SEALED_PREFIX}.${dk.id}.${encrypt(dk.key, Buffer.from(code, 'utf8'), aadOf(dk.campaignId))}`;
}

/** The key id a sealed code names; null for anything else (a version 1 plaintext code). */
export function sealedKeyId(stored: string): string | null {
  const parts = stored.split('.');
  return parts.length === 3 && parts[0] === SEALED_PREFIX && KEY_ID.test(parts[1]!) ? parts[1]! : null;
}

/** Whether a stored code is sealed (else it is a plaintext code from before issue 29). */
export const isSealed = (stored: string): boolean => sealedKeyId(stored) !== null;

/** Opens a sealed code; throws SealError when the key is not the one it names or it does not open. */
export function openCode(dk: DataKey, sealed: string): string {
  const keyId = sealedKeyId(sealed);
  if (keyId === null) throw new SealError('not a sealed code');
  if (keyId !== dk.id) throw new SealError(`sealed under key ${keyId}, not ${dk.id}`);
  return decrypt(dk.key, sealed.split('.')[2]!, aadOf(dk.campaignId)).toString('utf8');
}

/** A data key wrapped by a key-encryption key (base64url); the data key's id and campaign are its additional data. */
export function wrapKey(kek: Buffer, dk: DataKey): string {
  return encrypt(kek, dk.key, Buffer.from(`firstcome-data-key\n${dk.id}\n${dk.campaignId}`, 'utf8'));
}

export function unwrapKey(kek: Buffer, wrapped: string, id: string, campaignId: string): DataKey {
  const key = decrypt(kek, wrapped, Buffer.from(`firstcome-data-key\n${id}\n${campaignId}`, 'utf8'));
  if (key.length !== KEY_BYTES) throw new SealError(`data key ${id} is not ${KEY_BYTES} bytes`);
  return { id, campaignId, key };
}

/** A fresh data key for a campaign. */
export function newDataKey(campaignId: string): DataKey {
  return { id: `dk_${randomBytes(9).toString('base64url')}`, campaignId, key: randomBytes(KEY_BYTES) };
}
