import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKeyRing } from '../../src/infra/codeKeys/keyRing.js';
import { rotateDataKeys, shredDataKey } from '../../src/infra/codeKeys/keyAdmin.js';
import { CodeKeyError, CodeVault } from '../../src/infra/codeKeys/vault.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { freshDatabase, type FreshDatabase } from '../support/db.js';

const key = () => randomBytes(32).toString('base64');
const OLD = `old:${key()}`;
const NEW = `new:${key()}`;

let db: FreshDatabase;
let prisma: PrismaClient;
beforeAll(async () => {
  db = await freshDatabase('code-keys');
  prisma = createPrisma(db.url, { poolSize: 4 });
});
afterAll(async () => {
  await prisma?.$disconnect();
  await db?.drop();
});

/** a vault that holds nothing between calls: each one reads the table, as a process started now would */
const vault = (ring: string) => new CodeVault(prisma, parseKeyRing(ring), { ttlMs: 0 });

describe("a campaign's data key in code_data_keys", () => {
  it('is made once, whoever asks first: codes sealed by one process open in another', async () => {
    const [a, b] = [vault(OLD), vault(OLD)];
    const sealed = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).seal('race', `CODE-${i}`)));
    expect(await prisma.codeDataKey.count({ where: { campaignId: 'race' } })).toBe(1);
    for (const [i, s] of sealed.entries()) expect(await (i % 2 ? b : a).open('race', s)).toBe(`CODE-${i}`);
    const row = await prisma.codeDataKey.findUniqueOrThrow({ where: { campaignId: 'race' } });
    expect(row.kekId).toBe('old');
    // the table holds the data key wrapped: neither it nor any code in plaintext
    expect(JSON.stringify(row)).not.toMatch(/CODE-/);
  });

  it('a CODE_KEYS without the wrapping key, or with another key under its id: a clear error naming it, no code', async () => {
    const sealed = await vault(OLD).seal('keys', 'SECRET-1');
    const missing = await vault(NEW)
      .open('keys', sealed)
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CodeKeyError);
    expect((missing as CodeKeyError).reason).toBe('missing-kek');
    expect((missing as Error).message).toMatch(/wrapped by key old, which CODE_KEYS does not hold/);
    const wrong = await vault(`old:${key()}`)
      .open('keys', sealed)
      .catch((e: unknown) => e);
    expect((wrong as CodeKeyError).reason).toBe('wrong-kek');
    expect((wrong as Error).message).not.toContain('SECRET-1');
    // a reader shows no code instead of failing
    expect(await vault(NEW).openOrNull('keys', sealed)).toBeNull();
    // and a writer with the wrong ring seals nothing
    await expect(vault(`old:${key()}`).seal('keys', 'SECRET-2')).rejects.toThrow(CodeKeyError);
  });

  it('codes:rotate re-wraps every data key under the first key: codes sealed before open with the new ring alone', async () => {
    const before = await Promise.all(['r1', 'r2', 'r3'].map(async (c) => [c, await vault(OLD).seal(c, `ROT-${c}`)] as const));
    const result = await rotateDataKeys(prisma, parseKeyRing(`${NEW},${OLD}`));
    expect(result.unreadable).toEqual([]);
    expect(result.rewrapped).toBeGreaterThanOrEqual(3);
    for (const [c, sealed] of before) expect(await vault(NEW).open(c, sealed)).toBe(`ROT-${c}`);
    expect(await prisma.codeDataKey.count({ where: { kekId: 'old' } })).toBe(0);
    // again: nothing left to do
    expect((await rotateDataKeys(prisma, parseKeyRing(`${NEW},${OLD}`))).rewrapped).toBe(0);
  });

  it('codes:shred erases a campaign’s codes for good; the other campaigns’ still open', async () => {
    const gone = await vault(NEW).seal('shred-me', 'GONE-1');
    const kept = await vault(NEW).seal('keep-me', 'KEPT-1');
    expect(await shredDataKey(prisma, 'shred-me')).toBe(true);
    const err = await vault(NEW)
      .open('shred-me', gone)
      .catch((e: unknown) => e);
    expect((err as CodeKeyError).reason).toBe('shredded');
    expect(await vault(NEW).openOrNull('shred-me', gone)).toBeNull();
    // no new key is made for it, so nothing new is sealed under a key anyone could read back
    await expect(vault(NEW).seal('shred-me', 'NEW-1')).rejects.toThrow(/shredded/);
    expect(await vault(NEW).open('keep-me', kept)).toBe('KEPT-1');
    // a rotation leaves a shredded key shredded
    const r = await rotateDataKeys(prisma, parseKeyRing(NEW));
    expect(r.shredded).toBe(1);
    expect(await vault(NEW).openOrNull('shred-me', gone)).toBeNull();
  });
});
