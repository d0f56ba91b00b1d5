import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedis, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { campaignCodesResolver } from '../../src/api/loadCodes.js';

/**
 * `Campaign.codes` over the real Redis projection, its keys written as the writer leaves them: the
 * counts of an INVENTORY campaign, and UNAVAILABLE while Redis rebuilds it (a replay, a flush).
 */
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const ordering = new RedisOrdering(redis, `t:codes-${randomBytes(4).toString('hex')}`);
const k = ordering.keys;
const codes = campaignCodesResolver();
type Ctx = Parameters<typeof codes>[2];
/** what the resolver reads of a request: its caller, and the projection (nothing else of the API's services) */
const as = (admin: boolean) => ({ caller: { userId: admin ? 'boss' : 'u1', admin }, services: { ordering } }) as unknown as Ctx;
const asAdmin = as(true);

afterAll(async () => {
  const keys = await redis.keys(k.all());
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** a campaign of `stock` with `winners` in line and won, `loaded` codes kept and `issued` gifticons */
async function campaign(id: string, f: { stock: number; winners: number; loaded: number; issued: number; issuance?: string }) {
  const now = Date.now();
  await redis.hset(k.meta(id), {
    id,
    stock: String(f.stock),
    opensAt: String(now - 60_000),
    closesAt: String(now + 3_600_000),
    partition: '0',
    ...(f.issuance ? { issuance: f.issuance } : {}),
  });
  for (let i = 1; i <= f.winners; i++) {
    await redis.zadd(k.line(id), i, `u${i}`);
    await redis.hset(k.won(id), `u${i}`, `${i}|t`);
  }
  for (let i = 1; i <= f.loaded; i++) await redis.rpush(k.codes(id), `sealed-${i}`);
  for (let i = 1; i <= f.issued; i++) await redis.hset(k.gifts(id), `u${i}`, '{}');
}

describe('Campaign.codes', () => {
  it("counts an INVENTORY campaign's codes from Redis: loaded, issued, and the winners short of one", async () => {
    await campaign('inv', { stock: 5, winners: 4, loaded: 3, issued: 3, issuance: 'INVENTORY' });
    // a node of the read model's list, which shows fewer winners than Redis yet: the shortage is Redis's
    const listed = { id: 'inv', stock: 5, winners: 2 };
    expect(await codes(listed, {}, asAdmin)).toEqual({ loaded: 3, issued: 3, short: 1 });
    expect(await codes({ id: 'inv' }, {}, as(false))).toBeNull();
    await campaign('minted', { stock: 1, winners: 1, loaded: 0, issued: 1 });
    expect(await codes({ id: 'minted' }, {}, asAdmin)).toBeNull();
  });

  it('answers UNAVAILABLE while Redis rebuilds the campaign, not counts half rebuilt', async () => {
    await campaign('rebuilt', { stock: 5, winners: 5, loaded: 1, issued: 1, issuance: 'INVENTORY' });
    await redis.hset(k.meta('rebuilt'), 'building', '1');
    await expect(codes({ id: 'rebuilt' }, {}, asAdmin)).rejects.toMatchObject({ extensions: { code: 'UNAVAILABLE' } });
    // wiped, not re-created yet: only the flag is left
    await redis.del(k.meta('rebuilt'));
    await redis.hset(k.meta('rebuilt'), 'building', '1');
    await expect(codes({ id: 'rebuilt' }, {}, asAdmin)).rejects.toMatchObject({ extensions: { code: 'UNAVAILABLE' } });
  });
});
