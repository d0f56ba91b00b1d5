import { readFileSync } from 'node:fs';
import { Redis, type ChainableCommander, type Result } from 'ioredis';
import type { CampaignTerms } from '../../domain/campaign.js';
import type { CampaignEvent } from '../../domain/events.js';

/**
 * The Redis ordering projection: per campaign (hash-tagged `{c:<id>}` so Redis Cluster keeps a
 * campaign's keys together) a meta hash, the line (ZSET user → first log offset), pending tickets,
 * winners and gifticons. It is a projection of the log: it can be flushed and rebuilt.
 */

const lua = (name: string) => readFileSync(new URL(`./${name}.lua`, import.meta.url), 'utf8');

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fcLookup(meta: string, line: string, pending: string, claim: string, built: string, userId: string, token: string, ttlMs: number, count: '0' | '1'): Result<(string | number)[], Context>;
    fcPlace(meta: string, line: string, pending: string, ...args: string[]): Result<(string | number)[], Context>;
  }
  interface ChainableCommander {
    fcMetaFact(meta: string, field: string, value: string): ChainableCommander;
    fcPlace(meta: string, line: string, pending: string, ...args: string[]): ChainableCommander;
  }
}

export function createRedis(url: string, opts: { lazy?: boolean } = {}): Redis {
  const redis = new Redis(url, { lazyConnect: opts.lazy ?? false, maxRetriesPerRequest: 3, enableAutoPipelining: true });
  redis.defineCommand('fcLookup', { numberOfKeys: 5, lua: lua('lookup') });
  redis.defineCommand('fcPlace', { numberOfKeys: 3, lua: lua('place') });
  // a fact about a campaign (first entry, sold out, closed) is kept only where the campaign is: after
  // a flush, an HSETNX alone would recreate a meta without stock
  redis.defineCommand('fcMetaFact', {
    numberOfKeys: 1,
    lua: "if redis.call('HEXISTS', KEYS[1], 'stock') == 1 then return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) end return 0",
  });
  return redis;
}

export class Keys {
  constructor(readonly prefix: string) {}
  private c(id: string) {
    return `${this.prefix}:{c:${id}}`;
  }
  meta = (id: string) => `${this.c(id)}:meta`;
  line = (id: string) => `${this.c(id)}:line`;
  pending = (id: string) => `${this.c(id)}:pending`;
  won = (id: string) => `${this.c(id)}:won`;
  gifts = (id: string) => `${this.c(id)}:gifts`;
  claim = (id: string, userId: string) => `${this.c(id)}:claim:${userId}`;
  /** all of a campaign's keys, for cleanup */
  pattern = (id: string) => `${this.c(id)}:*`;
  /** set once a partition's projection is complete up to the decider's position */
  built = (topic: string, partition: number) => `${this.prefix}:built:${topic}:${partition}`;
  /** progress of a rebuild under way: JSON {next, until} offsets */
  rebuild = (topic: string, partition: number) => `${this.prefix}:rebuild:${topic}:${partition}`;
  reply = (instance: string) => `${this.prefix}:reply:${instance}`;
  /** pub/sub: who changed in a campaign (tagged like its keys, so a sharded channel fits the same slot) */
  changes = (id: string) => `${this.c(id)}:changes`;
  /** every campaign id this projection knows, for listing and reconciliation */
  campaigns = () => `${this.prefix}:campaigns`;
}

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
}

export interface CampaignView extends CampaignMeta {
  entrants: number;
  winners: number;
}

export interface GiftView {
  id: string;
  code: string;
  issuedAt: string;
}

export interface EntryView {
  campaignId: string;
  userId: string;
  ticket: string;
  position: number | null;
  stock: number;
  won: { position: number; wonAt: string } | null;
  gifticon: GiftView | null;
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
    },
    createdAt: h.createdAt ?? new Date(0).toISOString(),
    soldOutAt: h.soldOutAt || null,
    firstEntryAt: h.firstEntryAt || null,
    partition: Number(h.partition ?? 0),
    requests: Number(h.requests ?? 0),
    building: h.building === '1',
  };
}

export class RedisOrdering {
  readonly keys: Keys;
  constructor(
    readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new Keys(prefix);
  }

  async meta(campaignId: string): Promise<CampaignMeta | null> {
    return parseMeta(await this.redis.hgetall(this.keys.meta(campaignId)));
  }

  /**
   * A campaign as the projection knows it. With `builtKey` (the partition's sentinel) the answer
   * for a campaign that is not there comes from the same atomic read: `null` only where the
   * partition is built, else 'building' (read separately, a rebuild could end in between and make
   * a campaign still being rebuilt look unknown).
   */
  async campaign(campaignId: string, builtKey?: string): Promise<CampaignView | null | 'building'> {
    const k = this.keys;
    const [[, h], [, entrants], [, winners], [, built]] = (await this.redis
      .multi()
      .hgetall(k.meta(campaignId))
      .zcard(k.line(campaignId))
      .hlen(k.won(campaignId))
      .exists(builtKey ?? k.meta(campaignId))
      .exec()) as [[null, Record<string, string>], [null, number], [null, number], [null, number]];
    const meta = parseMeta(h);
    if (meta) return meta.building ? 'building' : { ...meta, entrants, winners };
    return builtKey && built !== 1 ? 'building' : null;
  }

  async isBuilt(topic: string, partition: number): Promise<boolean> {
    return (await this.redis.exists(this.keys.built(topic, partition))) === 1;
  }

  /** The entry of a user as the projection knows it; null when the user is not in line. `builtKey`: see `campaign`. */
  async entry(campaignId: string, userId: string, builtKey?: string): Promise<EntryView | 'unknown-campaign' | 'building' | null> {
    const k = this.keys;
    const res = (await this.redis
      .multi()
      .hmget(k.meta(campaignId), 'stock', 'partition', 'building')
      .exists(builtKey ?? k.meta(campaignId))
      .zscore(k.line(campaignId), userId)
      .zrank(k.line(campaignId), userId)
      .hget(k.pending(campaignId), userId)
      .hget(k.won(campaignId), userId)
      .hget(k.gifts(campaignId), userId)
      .exec()) as [null, unknown][];
    const [stock, partition, building] = res[0]![1] as (string | null)[];
    if (!stock) return builtKey && res[1]![1] !== 1 ? 'building' : 'unknown-campaign';
    if (building) return 'building';
    const score = res[2]![1] as string | null;
    const rank = res[3]![1] as number | null;
    const pending = res[4]![1] as string | null;
    const won = res[5]![1] as string | null;
    const gift = res[6]![1] as string | null;
    if (score === null && pending === null) return null;
    const [pos, wonAt] = won ? won.split('|') : [];
    return {
      campaignId,
      userId,
      ticket: score !== null ? `${partition}-${score}` : pending!,
      position: rank !== null ? rank + 1 : null,
      stock: Number(stock),
      won: won ? { position: Number(pos), wonAt: wonAt! } : null,
      gifticon: gift ? (JSON.parse(gift) as GiftView) : null,
    };
  }

  /**
   * The gate of `enter` (see lookup.lua); takes the user's append claim when a place may be left.
   * `count` is false when the same call asks again, so `requests` counts calls, not lookups.
   */
  lookup(campaignId: string, userId: string, claimToken: string, claimTtlMs: number, builtKey: string, count = true) {
    const k = this.keys;
    return this.redis.fcLookup(k.meta(campaignId), k.line(campaignId), k.pending(campaignId), k.claim(campaignId, userId), builtKey, userId, claimToken, claimTtlMs, count ? '1' : '0');
  }

  /** After the append: the user's ticket is known, the claim is no longer needed. */
  async markPending(campaignId: string, userId: string, ticket: string): Promise<void> {
    // no MULTI needed: should the process die in between, the claim expires by itself
    await Promise.all([this.redis.hsetnx(this.keys.pending(campaignId), userId, ticket), this.redis.del(this.keys.claim(campaignId, userId))]);
  }

  async releaseClaim(campaignId: string, userId: string): Promise<void> {
    await this.redis.del(this.keys.claim(campaignId, userId));
  }

  /**
   * The decider's ordering step (see place.lua), queued on the decider's pipeline so that a batch's
   * facts and places go to Redis in one round trip; `parsePlaces` reads the reply.
   */
  queuePlace(pipe: ChainableCommander, campaignId: string, entries: { offset: bigint; userId: string }[]): void {
    const k = this.keys;
    const args = entries.flatMap((e) => [e.offset.toString(), e.userId]);
    pipe.fcPlace(k.meta(campaignId), k.line(campaignId), k.pending(campaignId), ...args);
  }

  static parsePlaces(r: (string | number)[]): 'REBUILD' | { rank: number; firstOffset: bigint }[] {
    if (r[0] === 'REBUILD') return 'REBUILD';
    const out: { rank: number; firstOffset: bigint }[] = [];
    for (let i = 0; i < r.length; i += 2) out.push({ rank: Number(r[i]), firstOffset: BigInt(r[i + 1]!) });
    return out;
  }

  /**
   * Applies the facts of committed events to the projection (idempotent: each write sets the same
   * value again on a replay). EntrantRegistered is placed by `place`, not here.
   */
  applyTo(pipe: ChainableCommander, event: CampaignEvent, partition: number, building: boolean): void {
    const k = this.keys;
    const id = event.campaignId;
    switch (event.type) {
      case 'CampaignCreated': {
        const fields: Record<string, string> = {
          id,
          title: event.title,
          reward: event.reward,
          stock: String(event.stock),
          opensAt: String(Date.parse(event.opensAt)),
          closesAt: String(Date.parse(event.closesAt)),
          createdAt: event.occurredAt,
          partition: String(partition),
        };
        if (building) fields.building = '1';
        // a campaign is created once: a second CampaignCreated with the same id changes nothing;
        // remnant fields of a meta without stock (written after a flush) are dropped first
        pipe.eval(
          "if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then redis.call('DEL', KEYS[1]) redis.call('HSET', KEYS[1], unpack(ARGV)) end return 0",
          1,
          k.meta(id),
          ...Object.entries(fields).flat(),
        );
        pipe.zadd(k.campaigns(), Date.parse(event.occurredAt), id);
        break;
      }
      case 'EntrantRegistered':
        pipe.fcMetaFact(k.meta(id), 'firstEntryAt', event.occurredAt);
        break;
      case 'WinnerSelected':
        pipe.hset(k.won(id), event.userId, `${event.position}|${event.occurredAt}`);
        break;
      case 'GifticonIssued':
        pipe.hset(
          k.gifts(id),
          event.userId,
          JSON.stringify({ id: event.gifticonId, code: event.code, issuedAt: event.occurredAt } satisfies GiftView),
        );
        break;
      case 'CampaignSoldOut':
        pipe.fcMetaFact(k.meta(id), 'soldOutAt', event.occurredAt);
        break;
      case 'CampaignClosed':
        pipe.fcMetaFact(k.meta(id), 'closedAt', String(Date.parse(event.occurredAt)));
        break;
      default: {
        const _exhaustive: never = event;
        return _exhaustive;
      }
    }
  }
}
