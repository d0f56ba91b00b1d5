import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { RateLimitEvents } from '../metrics.js';
import { outcomeOf, pastRetention, statusOf } from '../domain/campaign.js';
import { challengeSetting, type ChallengeSetting } from '../domain/challenge.js';
import {
  campaignChallengeSet,
  campaignClosed,
  EVENT_VERSION,
  eventIds,
  ISSUANCES,
  type CampaignCreated,
  type Issuance,
} from '../domain/events.js';
import type { EventAppender } from '../infra/kafka/appender.js';
import { partitionFor } from '../infra/kafka/partitioning.js';
import type { CampaignView, EntryView, PartitionRef, RedisOrdering } from '../../projections/redis-ordering/index.js';
import type { Caller } from './auth.js';
import { SOLUTION_MAX_CHARS, type PowChallenges } from './challenge.js';
import type { Budget } from './budgets.js';
import type { EnterService } from './enter.js';
import { badInput, notFound, rateLimited, unavailable } from './errors.js';
import { CAMPAIGN_ID, campaignId, requireAdmin, requireUser, userId } from './guards.js';
import { DateTime } from './scalars.js';
import type { FairnessReader } from './fairness/reader.js';
import { campaignCodesResolver, loadCodesResolver, type CodeKeys } from './loadCodes.js';
import { gifticonResolvers, issuedGifticon, pendingGifticon, type CodeAccess } from './codes.js';

export interface ApiServices {
  config: Config;
  ordering: RedisOrdering;
  appender: EventAppender;
  /** the write path of `enter` (src/api/enter.ts); bench/floor.ts puts stand-ins here */
  enter: Pick<EnterService, 'enter'> & Partial<Pick<EnterService, 'fromMemory'>>;
  /** proof-of-work challenges (issue 34): issued by `challenge`, checked by `enter` */
  challenges: Pick<PowChallenges, 'issue'>;
  /**
   * The read model (Postgres), for a campaign Redis no longer holds once its partition is built:
   * closed past REDIS_RETENTION_HOURS, removed by cleanup or left out of a bounded rebuild.
   */
  archive?: {
    campaign(id: string): Promise<CampaignView | null>;
    entry(campaignId: string, userId: string): Promise<EntryView | 'unknown-campaign' | null>;
  };
  /** the public proofs of signed line heads (issue 31): `/fairness/…` and the well-known keys */
  fairness?: FairnessReader;
  /** the campaigns' data keys, for `loadCodes` (src/api/loadCodes.ts); absent: no code can be loaded */
  codeKeys?: CodeKeys;
  /** opens codes for those who may see them, records admins' reads (src/api/codes.ts); absent: every code reads null */
  codes?: CodeAccess;
  /** read side in Postgres and batch jobs plug in here (see projections/ and batch/) */
  extraResolvers?: Record<string, Record<string, unknown>>;
}

export interface Ctx {
  caller: Caller | null;
  services: ApiServices;
  limits?: RateLimitEvents;
  /** `enter` calls per user, shared by every API process (src/api/edge.ts); null: off */
  enterBudget?: Budget | null;
  /**
   * Filled in by the edge plugin: bytes of a document parsed anew, and the root field asked for
   * first. An object of its own, since Apollo runs each request on a shallow copy of the context.
   */
  seen?: {
    parsedBytes: number;
    operation?: string;
    /** the operation is a mutation whose only root field is `enter`, with no directive */
    loneEnter?: boolean;
    /** the campaign `enter` was answered SOLD_OUT for from the crowd memory (soldOut.ts) */
    soldOutFrom?: string;
  };
  /** the edge asked the crowd memory already: the user may be in line (soldOutReplies.ts) */
  crowdAsked?: { campaignId: string; answer: 'counted' };
  /** this request's records of admin reads of codes, by campaign (src/api/codes.ts) */
  codeReads?: Map<string, { codes: number; recorded: Promise<void> }>;
}

export function campaignOut(v: CampaignView, now = Date.now()) {
  return {
    id: v.id,
    title: v.title,
    reward: v.reward,
    stock: v.terms.stock,
    opensAt: new Date(v.terms.opensAt),
    closesAt: new Date(v.terms.closesAt),
    status: statusOf(v.terms, v.winners, now),
    entrants: v.entrants,
    winners: v.winners,
    remaining: Math.max(0, v.terms.stock - v.winners),
    challenge: v.challenge,
  };
}

/**
 * The gifticon is shown to its owner and to admins only (its code to fewer: src/api/codes.ts). A
 * winner whose decision is committed but whose gifticon is not issued yet holds a PENDING one.
 */
export function entryOut(e: EntryView, viewer: Caller) {
  const status = e.position === null ? 'QUEUED' : outcomeOf(e.stock, e.position);
  const visible = viewer.admin || viewer.userId === e.userId;
  return {
    campaignId: e.campaignId,
    userId: e.userId,
    ticket: e.ticket,
    position: e.position,
    status,
    gifticon:
      !visible || status !== 'WON'
        ? null
        : e.gifticon
          ? gifticonOf(e, e.gifticon)
          : e.won
            ? pendingGifticon(e.campaignId, e.userId, Boolean(e.issuanceParkedAt))
            : null,
  };
}

const gifticonOf = (e: EntryView, g: NonNullable<EntryView['gifticon']>) =>
  issuedGifticon({
    id: g.id,
    campaignId: e.campaignId,
    userId: e.userId,
    code: g.code,
    issuedAt: new Date(g.issuedAt),
    expiresAt: g.expiresAt ? new Date(g.expiresAt) : null,
  });

/** The campaign's partition: while it is rebuilt, a campaign not found may be one not rebuilt yet. */
const partitionOf = (s: ApiServices, id: string): PartitionRef => ({
  topic: s.config.topics.events,
  partition: partitionFor(id, s.config.EVENT_PARTITIONS),
});

/** `archive: false` for a caller that needs the campaign in Redis (closeCampaign waits for Redis to show the close). */
async function readCampaign(s: ApiServices, id: string, opts = { archive: true }): Promise<CampaignView | null> {
  const v = await s.ordering.campaign(id, partitionOf(s, id));
  if (v === 'building') throw unavailable();
  return v ?? (opts.archive ? await archived(s, id) : null);
}

async function readEntry(s: ApiServices, id: string, user: string): Promise<EntryView | null> {
  const e = await s.ordering.entry(id, user, partitionOf(s, id));
  if (e === 'building') throw unavailable();
  if (e !== 'unknown-campaign') return e;
  if (!(await archived(s, id))) return null;
  const a = await fromArchive(() => s.archive?.entry(id, user));
  return a === 'unknown-campaign' ? null : (a ?? null);
}

/**
 * A campaign Redis does not hold although its partition is built: the read model's, if it is closed
 * past REDIS_RETENTION_HOURS (the projection no longer needs it). One the read model has as live
 * should be in Redis: it is on its way back (a rebuild started over), so the answer is retryable.
 */
async function archived(s: ApiServices, id: string): Promise<CampaignView | null> {
  const v = await fromArchive(() => s.archive?.campaign(id));
  if (v && !pastRetention(v.terms, Date.now(), s.config.REDIS_RETENTION_HOURS * 3_600_000)) throw unavailable();
  return v;
}

/** A read model that fails is a retryable refusal, never "no such campaign". */
async function fromArchive<T>(read: () => Promise<T> | undefined): Promise<T | null> {
  try {
    return (await read()) ?? null;
  } catch {
    throw unavailable(1000);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the single writer has projected what was just appended, so the next call finds it. */
async function until<T>(probe: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw unavailable(1000);
    await sleep(15);
  }
}

const createInput = z.object({
  id: z.string().regex(CAMPAIGN_ID, 'must match [a-z0-9-]{1,64}').nullish(),
  title: z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters'),
  reward: z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters'),
  stock: z.number().int().min(1, 'must be 1 .. 10,000,000').max(10_000_000, 'must be 1 .. 10,000,000'),
  opensAt: z.date().nullish(),
  closesAt: z.date(),
  issuance: z.enum(ISSUANCES as [Issuance, ...Issuance[]]).nullish(),
  product: z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters').nullish(),
  challenge: z.unknown().nullish(),
});

const challengeInput = z.object({
  mode: z.enum(['OFF', 'POW']),
  // its bounds are the domain's (challengeSetting), checked once, there
  difficulty: z.number().int().nullish(),
});

/** A ChallengeInput as the domain's setting; `field` names the argument in a BAD_USER_INPUT. */
function parseChallenge(value: unknown, field: string): ChallengeSetting {
  const input = parseInput(challengeInput, value, field);
  const s = challengeSetting(input.mode, input.difficulty);
  if ('invalid' in s) throw badInput(`${field}.difficulty`, s.invalid);
  return s;
}

function parseInput<T>(schema: z.ZodType<T>, value: unknown, prefix: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw badInput([prefix, ...i.path.map(String)].join('.'), i.message);
  }
  return r.data;
}

export function buildResolvers() {
  return {
    DateTime,
    ...gifticonResolvers(),
    Campaign: { codes: campaignCodesResolver() },
    Query: {
      campaign: async (_: unknown, args: { id: unknown }, ctx: Ctx) => {
        requireUser(ctx);
        const v = await readCampaign(ctx.services, campaignId(args.id, 'id'));
        return v && campaignOut(v);
      },
      myEntry: async (_: unknown, args: { campaignId: unknown }, ctx: Ctx) => {
        const caller = requireUser(ctx);
        const e = await readEntry(ctx.services, campaignId(args.campaignId), caller.userId);
        return e && entryOut(e, caller);
      },
      entry: async (_: unknown, args: { campaignId: unknown; userId: unknown }, ctx: Ctx) => {
        const caller = requireAdmin(ctx);
        const e = await readEntry(ctx.services, campaignId(args.campaignId), userId(args.userId));
        return e && entryOut(e, caller);
      },
      challenge: async (_: unknown, args: { campaignId: unknown }, ctx: Ctx) => {
        const caller = requireUser(ctx);
        const id = campaignId(args.campaignId);
        const v = await readCampaign(ctx.services, id);
        if (!v) throw notFound('campaign');
        return ctx.services.challenges.issue(id, caller.userId, v.challenge);
      },
    },
    Mutation: {
      enter: async (_: unknown, args: { campaignId: unknown; solution?: unknown }, ctx: Ctx) => {
        const caller = requireUser(ctx);
        const id = campaignId(args.campaignId);
        const solution = args.solution ?? null;
        if (solution !== null && (typeof solution !== 'string' || solution.length > SOLUTION_MAX_CHARS))
          throw badInput('solution', `must be ALTCHA's base64 payload, at most ${SOLUTION_MAX_CHARS} characters`);
        // a user hammering `enter` is slowed before the gate's Lua or an append; without Redis, `enter` is unavailable anyway
        const budget = ctx.enterBudget;
        const slow = budget
          ? async () => {
              const waitMs = await budget.take(caller.userId).catch(() => Promise.reject(unavailable(1000)));
              if (waitMs > 0) {
                ctx.limits?.refused('enter');
                throw rateLimited(waitMs);
              }
            }
          : undefined;
        // the crowd memory first (src/api/soldOut.ts), unless the edge asked it for this request
        const enter = ctx.services.enter;
        const asked = ctx.crowdAsked?.campaignId === id ? ctx.crowdAsked.answer : await enter.fromMemory?.(id, caller.userId);
        if (asked === 'SOLD_OUT' && ctx.seen) ctx.seen.soldOutFrom = id;
        const r = await enter.enter(id, caller.userId, solution, slow, asked);
        return 'rejection' in r ? { entry: null, rejection: r.rejection } : { entry: entryOut(r.entry, caller), rejection: null };
      },
      createCampaign: async (_: unknown, args: { input: Record<string, unknown> }, ctx: Ctx) => {
        requireAdmin(ctx);
        const s = ctx.services;
        const input = parseInput(createInput, args.input, 'input');
        const now = Date.now();
        const opensAt = input.opensAt ?? new Date(now);
        if (input.closesAt.getTime() <= opensAt.getTime()) throw badInput('input.closesAt', 'must be after opensAt');
        if (input.closesAt.getTime() <= now) throw badInput('input.closesAt', 'must be in the future');
        const challenge = input.challenge == null ? null : parseChallenge(input.challenge, 'input.challenge');
        const issuance = input.issuance ?? 'MINTED';
        // its winners would wait for codes no call can load yet: refused rather than taken and never served
        if (issuance === 'PROVIDER' && !input.product) throw badInput('input.product', 'a PROVIDER campaign names the provider’s product');
        if (issuance !== 'PROVIDER' && input.product) throw badInput('input.product', 'only a PROVIDER campaign has a product');
        const id = input.id ?? `c-${randomBytes(6).toString('hex')}`;
        if (await s.ordering.meta(id)) throw badInput('input.id', `campaign ${id} already exists`);
        const event: CampaignCreated = {
          type: 'CampaignCreated',
          version: EVENT_VERSION,
          eventId: eventIds.created(id),
          campaignId: id,
          occurredAt: new Date(now).toISOString(),
          title: input.title,
          reward: input.reward,
          stock: input.stock,
          opensAt: opensAt.toISOString(),
          closesAt: input.closesAt.toISOString(),
          ...(challenge ? { challenge } : {}),
          // left out for MINTED: the event reads as every campaign's before issue 29
          ...(issuance !== 'MINTED' ? { issuance } : {}),
          ...(input.product ? { product: input.product } : {}),
        };
        await s.appender.append(event);
        const v = await until(async () => {
          const c = await s.ordering.campaign(id);
          return c === 'building' ? null : c;
        });
        return campaignOut(v);
      },
      loadCodes: loadCodesResolver(),
      closeCampaign: async (_: unknown, args: { id: unknown }, ctx: Ctx) => {
        requireAdmin(ctx);
        const s = ctx.services;
        const id = campaignId(args.id, 'id');
        const v = (await readCampaign(s, id, { archive: false })) ?? (await archived(s, id));
        if (!v) throw notFound('campaign');
        // closed past retention, so closed already: only the read model holds it
        if (!(await s.ordering.meta(id))) return campaignOut(v);
        if (v.terms.closedAt === null) {
          await s.appender.append(campaignClosed(id, 'admin'));
        }
        return campaignOut(
          await until(async () => {
            const c = await s.ordering.campaign(id);
            return c && c !== 'building' && c.terms.closedAt !== null ? c : null;
          }),
        );
      },
      setChallenge: async (_: unknown, args: { campaignId: unknown; challenge: unknown }, ctx: Ctx) => {
        requireAdmin(ctx);
        const s = ctx.services;
        const id = campaignId(args.campaignId);
        const setting = parseChallenge(args.challenge, 'challenge');
        const v = await readCampaign(s, id, { archive: false });
        if (!v) {
          // closed past retention: only the read model holds it, and it takes no entry to challenge
          if (await archived(s, id)) throw badInput('campaignId', 'the campaign is closed');
          throw notFound('campaign');
        }
        const same = (c: ChallengeSetting) => c.mode === setting.mode && c.difficulty === setting.difficulty;
        if (same(v.challenge)) return campaignOut(v);
        await s.appender.append(campaignChallengeSet(id, setting, randomBytes(8).toString('hex')));
        return campaignOut(
          await until(async () => {
            const c = await s.ordering.campaign(id);
            return c && c !== 'building' && same(c.challenge) ? c : null;
          }),
        );
      },
    },
  };
}
