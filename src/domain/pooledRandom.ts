import { randomFillSync } from 'node:crypto';

/**
 * Bytes from the CSPRNG, drawn 4 KB at a time. A winner takes 41 (a code, an id and its seal's
 * IV): one `randomBytes` call each cost ~10 µs on these machines, a pooled draw a tenth of a µs
 * (Node pools the same way for `randomUUID`). Each byte is handed out once. The view is read at
 * once by the caller, before the next draw.
 */
const pool = Buffer.alloc(4096);
let drawn = pool.length;

export function pooledRandom(n: number): Buffer {
  if (drawn + n > pool.length) {
    randomFillSync(pool);
    drawn = 0;
  }
  const bytes = pool.subarray(drawn, drawn + n);
  drawn += n;
  return bytes;
}
