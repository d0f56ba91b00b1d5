import { createHash } from 'node:crypto';
import { KEY_BYTES, KEY_ID } from '../../domain/sealing.js';

/**
 * The key ring of CODE_KEYS: key-encryption keys, `kid:base64(32 bytes)`, comma-separated. The
 * first one wraps new data keys (and re-wraps them on `npm run codes:rotate`); every one unwraps.
 */
export interface KeyRing {
  /** the key that wraps: the first of the list */
  current: { id: string; key: Buffer };
  byId: ReadonlyMap<string, Buffer>;
}

/** The development default: a key everyone knows, with a warning at start (never in production). */
export const DEV_CODE_KEYS = `dev:${createHash('sha256').update('firstcome-development-code-key').digest('base64')}`;

/** Parses CODE_KEYS; throws with what is wrong, never with a key's bytes. */
export function parseKeyRing(value: string): KeyRing {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error('expected kid:base64 of 32 bytes, comma-separated');
  const byId = new Map<string, Buffer>();
  const order: string[] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    if (!KEY_ID.test(id)) throw new Error(`key ${i + 1}: expected kid:base64, kid of A-Za-z0-9_- (1-64)`);
    const b64 = entry.slice(colon + 1);
    const key = Buffer.from(b64, 'base64');
    if (!/^[A-Za-z0-9+/=_-]+$/.test(b64) || key.length !== KEY_BYTES) throw new Error(`key ${id}: expected base64 of ${KEY_BYTES} bytes`);
    if (byId.has(id)) throw new Error(`key ${id} is given twice`);
    byId.set(id, key);
    order.push(id);
  }
  return { current: { id: order[0]!, key: byId.get(order[0]!)! }, byId };
}
