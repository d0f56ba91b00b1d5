import type { CampaignView, EntryView } from '../redis-ordering/index.js';
import type { PrismaClient } from '../../src/infra/prisma/client.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { CHALLENGE_OFF, type ChallengeSetting } from '../../src/domain/challenge.js';
import type { Campaign } from '../../src/infra/prisma/client.js';

/**
 * A campaign and a user's entry as the read model holds them, in the shapes the Redis reads give:
 * the API falls back to these for a campaign Redis no longer holds (closed past
 * REDIS_RETENTION_HOURS: removed by cleanup, or left out of a bounded rebuild). The read model keeps
 * every campaign of the log.
 */
export function readModelArchive(prisma: PrismaClient, partitions: number) {
  return {
    async campaign(id: string): Promise<CampaignView | null> {
      const c = await prisma.campaign.findUnique({ where: { id } });
      if (!c) return null;
      return {
        id: c.id,
        title: c.title,
        reward: c.reward,
        terms: { stock: c.stock, opensAt: c.opensAt.getTime(), closesAt: c.closesAt.getTime(), closedAt: c.closedAt?.getTime() ?? null },
        createdAt: c.createdAt.toISOString(),
        soldOutAt: c.soldOutAt?.toISOString() ?? null,
        firstEntryAt: c.firstEntryAt?.toISOString() ?? null,
        partition: partitionFor(c.id, partitions),
        requests: c.requests,
        building: false,
        challenge: challengeOfRow(c),
        entrants: c.entrants,
        winners: c.winners,
      };
    },

    /** null when the user has no entry; 'unknown-campaign' when the read model has no such campaign */
    async entry(campaignId: string, userId: string): Promise<EntryView | 'unknown-campaign' | null> {
      const key = { campaignId_userId: { campaignId, userId } };
      const [c, e, w, g] = await Promise.all([
        prisma.campaign.findUnique({ where: { id: campaignId }, select: { stock: true } }),
        prisma.entry.findUnique({ where: key }),
        prisma.winner.findUnique({ where: key }),
        prisma.gifticon.findUnique({ where: key }),
      ]);
      if (!c) return 'unknown-campaign';
      if (!e) return null;
      return {
        campaignId,
        userId,
        ticket: e.ticket,
        position: e.position,
        stock: c.stock,
        won: w ? { position: w.position, wonAt: w.wonAt.toISOString() } : null,
        gifticon: g
          ? { id: g.id, code: g.code, issuedAt: g.issuedAt.toISOString(), ...(g.expiresAt ? { expiresAt: g.expiresAt.toISOString() } : {}) }
          : null,
        issuanceParkedAt: g ? null : (w?.issuanceParkedAt?.toISOString() ?? null),
      };
    },
  };
}

export type ReadModelArchive = ReturnType<typeof readModelArchive>;

/** The proof-of-work setting as the read model holds it. */
export function challengeOfRow(r: Pick<Campaign, 'challengeMode' | 'challengeDifficulty'>): ChallengeSetting {
  return r.challengeMode === 'POW' ? { mode: 'POW', difficulty: r.challengeDifficulty } : CHALLENGE_OFF;
}
