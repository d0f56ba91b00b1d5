import { unwrapKey, wrapKey } from '../../domain/sealing.js';
import type { PrismaClient } from '../prisma/client.js';
import type { KeyRing } from './keyRing.js';

/**
 * Re-wraps every data key not wrapped by the ring's current key under it (`npm run codes:rotate`).
 * The data keys stay the same, so no sealed code anywhere changes. A key whose wrapping key the ring
 * lacks, or that does not unwrap, is left as it is and counted: nothing is lost by a rotation.
 */
export async function rotateDataKeys(
  prisma: PrismaClient,
  ring: KeyRing,
  progress: (done: number, total: number) => void = () => undefined,
): Promise<{ total: number; rewrapped: number; current: number; shredded: number; unreadable: { campaignId: string; why: string }[] }> {
  const rows = await prisma.codeDataKey.findMany({ orderBy: { createdAt: 'asc' } });
  const out = { total: rows.length, rewrapped: 0, current: 0, shredded: 0, unreadable: [] as { campaignId: string; why: string }[] };
  for (const [i, row] of rows.entries()) {
    progress(i, rows.length);
    if (row.wrapped === null || row.kekId === null) out.shredded++;
    else if (row.kekId === ring.current.id) out.current++;
    else {
      const kek = ring.byId.get(row.kekId);
      if (!kek) out.unreadable.push({ campaignId: row.campaignId, why: `wrapped by ${row.kekId}, which CODE_KEYS does not hold` });
      else {
        try {
          const dk = unwrapKey(kek, row.wrapped, row.keyId, row.campaignId);
          // only the row still wrapped as read is changed: a shred meanwhile wins
          const n = await prisma.codeDataKey.updateMany({
            where: { keyId: row.keyId, kekId: row.kekId, wrapped: row.wrapped },
            data: { kekId: ring.current.id, wrapped: wrapKey(ring.current.key, dk), rotatedAt: new Date() },
          });
          out.rewrapped += n.count;
        } catch {
          out.unreadable.push({ campaignId: row.campaignId, why: `key ${row.kekId} of CODE_KEYS does not unwrap it` });
        }
      }
    }
  }
  progress(rows.length, rows.length);
  return out;
}

/**
 * Erases a campaign's codes (`npm run codes:shred`): its data key is deleted, so every sealed code
 * of the campaign, in the log, the archive, Postgres and Redis, can never be opened again. The row
 * stays (without its key) so that readers say "shredded" rather than "missing", and no process
 * makes a new key for the campaign. Returns false when the campaign has no data key.
 */
export async function shredDataKey(prisma: PrismaClient, campaignId: string): Promise<boolean> {
  const n = await prisma.codeDataKey.updateMany({ where: { campaignId }, data: { wrapped: null, kekId: null, shreddedAt: new Date() } });
  if (n.count > 0) return true;
  // no key yet: one is made shredded, so none is ever made for the campaign
  const made = await prisma.codeDataKey.createMany({
    data: [{ keyId: `dk_shredded_${campaignId}`.slice(0, 64), campaignId, createdAt: new Date(), shreddedAt: new Date() }],
    skipDuplicates: true,
  });
  return made.count > 0 ? false : true;
}
