import type { RedisClient } from './client.js';
import type { CampaignTerms } from '../../src/domain/campaign.js';
import type { ChallengeSetting } from '../../src/domain/challenge.js';
import { challengeOf } from './answers.js';
import { ticketOf } from '../../src/domain/events.js';
import { Keys, type PartitionRef } from './keys.js';
import { confirmAbsent } from './rebuild.js';

/**
 * The reads of the Redis ordering projection: a campaign and a user's entry as the projection
 * knows them. Per campaign (hash tag `{c:<id>}`): a meta hash (terms, counters, facts), the line
 * (ZSET user → first log offset), pending tickets, winners and gifticons. It is a projection of
 * the log: it can be flushed and rebuilt (README.md says how readers are kept from wrong answers
 * meanwhile).
 */

export interface CampaignMeta {
  id: string;
  title: string;
  reward: string;
  terms: CampaignTerms;
  createdAt: string;
  soldOutAt: string | null;
  firstEntryAt: string | null;
  partition: number;
  requests: number;
  building: boolean;
  challenge: ChallengeSetting;
}

export interface CampaignView extends CampaignMeta {
  entrants: number;
  winners: number;
}

export interface GiftView {
  id: string;
  code: string;
  issuedAt: string;
  /** a PROVIDER voucher's expiry (ISO-8601) */
  expiresAt?: string;
}

export interface EntryView {
  campaignId: string;
  userId: string;
  ticket: string;
  position: number | null;
  stock: number;
  won: { position: number; wonAt: string } | null;
  gifticon: GiftView | null;
  /** a winner without a gifticon whose issuance was parked: when it was last (IssuanceParked) */
  issuanceParkedAt?: string | null;
}

function parseMeta(h: Record<string, string>): CampaignMeta | null {
  if (!h.id || !h.stock) return null;
  return {
    id: h.id,
    title: h.title ?? '',
    reward: h.reward ?? '',
    terms: {
      stock: Number(h.stock),
      opensAt: Number(h.opensAt),
      closesAt: Number(h.closesAt),
      closedAt: h.closedAt ? Number(h.closedAt) : null,
      ...(h.issuance === 'INVENTORY' || h.issuance === 'PROVIDER' ? { issuance: h.issuance } : {}),
    },
    createdAt: h.createdAt ?? new Date(0).toISOString(),
    soldOutAt: h.soldOutAt || null,
    firstEntryAt: h.firstEntryAt || null,
    partition: Number(h.partition ?? 0),
    requests: Number(h.requests ?? 0),
    building: h.building === '1',
    challenge: challengeOf(h.challengeMode, h.challengeDifficulty),
  };
}

export type { PartitionRef } from './keys.js';

export class RedisOrdering {
  readonly keys: Keys;
  /** reads of a writer step count on their way (see `writerSeq`) */
  private readonly seqReads = new Map<string, Promise<number>>();
  constructor(
    readonly redis: RedisClient,
    prefix: string,
    /** the log this process follows, as `identityKey` gives it: written on every sentinel it sets (identity.ts) */
    readonly logTag: string | null = null,
  ) {
    this.keys = new Keys(prefix);
  }

  async meta(campaignId: string): Promise<CampaignMeta | null> {
    return parseMeta(await this.redis.hgetall(this.keys.meta(campaignId)));
  }

  async isBuilt(where: PartitionRef): Promise<boolean> {
    return (await this.redis.exists(this.keys.built(where.topic, where.partition))) === 1;
  }

  /**
   * A campaign as the projection knows it. Given its partition, a campaign that is not there is
   * `null` only where the partition is built (rebuild.ts: confirmAbsent), else 'building': a
   * campaign not found while it is rebuilt must not read as unknown. Without it, `null`.
   */
  async campaign(campaignId: string, where?: PartitionRef): Promise<CampaignView | null | 'building'> {
    const k = this.keys;
    for (;;) {
      const expected = await this.writerSeq(campaignId, where);
      const [[, h], [, entrants], [, winners]] = (await this.redis
        .multi()
        .hgetall(k.meta(campaignId))
        .zcard(k.line(campaignId))
        .hlen(k.won(campaignId))
        .exec()) as [[null, Record<string, string>], [null, number], [null, number]];
      if (h.building === '1' || (h.stock && Number(h.seq ?? 0) < expected)) return 'building';
      const meta = parseMeta(h);
      if (meta) return { ...meta, entrants, winners };
      if (!where) return null;
      const absent = await confirmAbsent(this, where, campaignId);
      if (absent !== 'present') return absent === 'unknown' ? null : 'building';
    }
  }

  /** The entry of a user as the projection knows it; null when the user is not in line. `where`: see `campaign`. */
  async entry(campaignId: string, userId: string, where?: PartitionRef): Promise<EntryView | 'unknown-campaign' | 'building' | null> {
    const k = this.keys;
    for (;;) {
      const expected = await this.writerSeq(campaignId, where);
      const res = (await this.redis
        .multi()
        .hmget(k.meta(campaignId), 'stock', 'partition', 'building', 'seq')
        .zscore(k.line(campaignId), userId)
        .zrank(k.line(campaignId), userId)
        .hget(k.pending(campaignId), userId)
        .hget(k.won(campaignId), userId)
        .hget(k.gifts(campaignId), userId)
        .hget(k.parkedIssuances(campaignId), userId)
        .exec()) as [null, unknown][];
      const [stock, partition, building, seq] = res[0]![1] as (string | null)[];
      if (building || (stock && Number(seq ?? 0) < expected)) return 'building';
      if (stock) return entryOf(campaignId, userId, Number(stock), Number(partition), res.slice(1).map(([, v]) => v) as EntryFields);
      if (!where) return 'unknown-campaign';
      const absent = await confirmAbsent(this, where, campaignId);
      if (absent !== 'present') return absent === 'unknown' ? 'unknown-campaign' : 'building';
    }
  }

  /**
   * The single writer's step count of the campaign (lines.ts publishes it after each step), read
   * before the campaign: a campaign below it lost writes (a failover) and is not answered from. 0
   * when unknown (no partition given, or none published).
   */
  writerSeq(campaignId: string, where?: PartitionRef): Promise<number> {
    if (!where) return Promise.resolve(0);
    // Calls made while a read of the same count is on its way share it: any read that returns
    // before the campaign is read will do (the writer publishes after its writes), and a shared one
    // is no older than the round trip a call of its own would take. A crowd on one campaign then
    // costs one HGET per round trip, not one per `enter`.
    const key = this.keys.seqs(where.topic, where.partition);
    const id = `${key}|${campaignId}`;
    let read = this.seqReads.get(id);
    if (!read) {
      read = this.redis.hget(key, campaignId).then((v) => Number(v ?? 0));
      this.seqReads.set(id, read);
      const done = () => this.seqReads.delete(id);
      read.then(done, done);
    }
    return read;
  }

  /**
   * An INVENTORY campaign's codes as the writer projected them (loadCodes.lua): how many it holds,
   * how many of its winners hold a gifticon, and, given a chunk id, what that chunk came to (null
   * until it is applied). Never a code.
   */
  async inventory(campaignId: string, chunkId?: string): Promise<InventoryView> {
    const k = this.keys;
    const [total, issued, chunk] = await Promise.all([
      this.redis.llen(k.codes(campaignId)),
      this.redis.hlen(k.gifts(campaignId)),
      chunkId === undefined ? Promise.resolve(null) : this.redis.hget(k.chunks(campaignId), chunkId),
    ]);
    return { total, issued, chunk: chunk === null ? null : parseChunk(chunk) };
  }

  /** The API's request counter of a campaign: what the meta holds plus what a replay carries; null when neither is there. */
  async requests(campaignId: string): Promise<number | null> {
    const k = this.keys;
    const [[requests, stock], carry] = await Promise.all([
      this.redis.hmget(k.meta(campaignId), 'requests', 'stock'),
      this.redis.get(k.carry(campaignId)),
    ]);
    if (stock === null && carry === null) return null;
    return Number(requests ?? 0) + Number(carry ?? 0);
  }
}

export interface InventoryView {
  /** codes kept, in load order */
  total: number;
  /** gifticons issued */
  issued: number;
  chunk: { loaded: number; duplicates: number[] } | null;
}

const parseChunk = (v: string) => {
  const [loaded, dups] = v.split('|');
  return { loaded: Number(loaded), duplicates: dups ? dups.split(',').map(Number) : [] };
};

type EntryFields = [
  score: string | null,
  rank: number | null,
  pending: string | null,
  won: string | null,
  gift: string | null,
  parkedAt: string | null,
];

function entryOf(
  campaignId: string,
  userId: string,
  stock: number,
  partition: number,
  [score, rank, pending, won, gift, parkedAt]: EntryFields,
): EntryView | null {
  if (score === null && pending === null) return null;
  const [pos, wonAt] = won ? won.split('|') : [];
  return {
    campaignId,
    userId,
    ticket: score !== null ? ticketOf(partition, BigInt(score)) : pending!,
    position: rank !== null ? rank + 1 : null,
    stock,
    won: won ? { position: Number(pos), wonAt: wonAt! } : null,
    gifticon: gift ? (JSON.parse(gift) as GiftView) : null,
    issuanceParkedAt: gift ? null : parkedAt,
  };
}
