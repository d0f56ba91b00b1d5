import type { ApiPluginFactory } from '../../plugin.js';
import { campaignId, requireAdmin, type Signed } from '../guards.js';
import { statusOf } from '../../domain/campaign.js';
import { challengeOfRow } from '../../../projections/prisma-tables/archive.js';
import type { Campaign, Gifticon, PrismaClient } from '../../infra/prisma/client.js';
import { connectionOf, decodeCursor, pageSize } from './connections.js';
import { codeReadResolvers } from './codeReads.js';
import { issuedGifticon, pendingGifticon } from '../codes.js';

/**
 * The admin lists of the read model (Postgres): `campaigns`, `winners` by position and
 * `gifticons` in issue order. Admins only: the caller is checked before any argument.
 */

type CampaignRow = Pick<
  Campaign,
  | 'id'
  | 'title'
  | 'reward'
  | 'stock'
  | 'opensAt'
  | 'closesAt'
  | 'closedAt'
  | 'createdAt'
  | 'entrants'
  | 'winners'
  | 'challengeMode'
  | 'challengeDifficulty'
>;

export function campaignNode(r: CampaignRow, now = Date.now()) {
  const terms = { stock: r.stock, opensAt: r.opensAt.getTime(), closesAt: r.closesAt.getTime(), closedAt: r.closedAt?.getTime() ?? null };
  return {
    id: r.id,
    title: r.title,
    reward: r.reward,
    stock: r.stock,
    opensAt: r.opensAt,
    closesAt: r.closesAt,
    status: statusOf(terms, r.winners, now),
    entrants: r.entrants,
    winners: r.winners,
    remaining: Math.max(0, r.stock - r.winners),
    challenge: challengeOfRow(r),
  };
}

export function readModelResolvers(prisma: PrismaClient) {
  return {
    Query: {
      /** newest first */
      campaigns: async (_: unknown, args: { first?: unknown; after?: unknown }, ctx: Signed) => {
        requireAdmin(ctx);
        const first = pageSize(args.first, 20);
        const after = decodeCursor('campaigns', args.after);
        const where = after
          ? { OR: [{ createdAt: { lt: new Date(after.createdAt) } }, { createdAt: new Date(after.createdAt), id: { lt: after.id } }] }
          : {};
        const [rows, totalCount] = await Promise.all([
          prisma.campaign.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: first + 1 }),
          prisma.campaign.count(),
        ]);
        const now = Date.now();
        return connectionOf(
          rows,
          first,
          totalCount,
          (r) => ({ list: 'campaigns', createdAt: r.createdAt.getTime(), id: r.id }),
          (r) => campaignNode(r, now),
        );
      },
      winners: async (_: unknown, args: { campaignId: unknown; first?: unknown; after?: unknown }, ctx: Signed) => {
        requireAdmin(ctx);
        const id = campaignId(args.campaignId);
        const first = pageSize(args.first, 100);
        const after = decodeCursor('winners', args.after, id);
        const [rows, totalCount] = await Promise.all([
          prisma.winner.findMany({
            where: { campaignId: id, ...(after ? { position: { gt: after.position } } : {}) },
            orderBy: { position: 'asc' },
            take: first + 1,
          }),
          prisma.winner.count({ where: { campaignId: id } }),
        ]);
        const gifts = await prisma.gifticon.findMany({
          where: { campaignId: id, userId: { in: rows.slice(0, first).map((r) => r.userId) } },
        });
        const giftOf = new Map(gifts.map((g) => [g.userId, g]));
        return connectionOf(
          rows,
          first,
          totalCount,
          (r) => ({ list: 'winners', campaignId: id, position: r.position }),
          (r) => {
            const g = giftOf.get(r.userId);
            return {
              campaignId: r.campaignId,
              userId: r.userId,
              position: r.position,
              wonAt: r.wonAt,
              // a winner without one waits for it (INVENTORY short of codes, PROVIDER), or its PROVIDER issuance is parked
              gifticon: g ? gifticonOfRow(g) : pendingGifticon(r.campaignId, r.userId, r.issuanceParkedAt !== null),
            };
          },
        );
      },
      gifticons: async (_: unknown, args: { campaignId: unknown; first?: unknown; after?: unknown }, ctx: Signed) => {
        requireAdmin(ctx);
        const id = campaignId(args.campaignId);
        const first = pageSize(args.first, 100);
        const after = decodeCursor('gifticons', args.after, id);
        const [rows, totalCount] = await Promise.all([
          prisma.gifticon.findMany({
            where: { campaignId: id, ...(after ? { logOffset: { gt: after.logOffset } } : {}) },
            orderBy: { logOffset: 'asc' },
            take: first + 1,
          }),
          prisma.gifticon.count({ where: { campaignId: id } }),
        ]);
        return connectionOf(rows, first, totalCount, (r) => ({ list: 'gifticons', campaignId: id, logOffset: r.logOffset }), gifticonOfRow);
      },
    },
  };
}

/** A `gifticons` row as the API's node (the row's other columns stay out of it). */
const gifticonOfRow = (g: Gifticon) =>
  issuedGifticon({ id: g.id, campaignId: g.campaignId, userId: g.userId, code: g.code, issuedAt: g.issuedAt, expiresAt: g.expiresAt });

/** Served by every API process, whether or not it runs the projector. */
export const readModelPlugin: ApiPluginFactory = async (shared) => ({
  resolvers: { Query: { ...readModelResolvers(shared.prisma).Query, ...codeReadResolvers(shared.prisma).Query } },
  stop: async () => undefined,
});
