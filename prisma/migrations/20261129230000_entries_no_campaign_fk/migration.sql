-- The read model is rebuilt from the log, and the projector writes a campaign (CampaignCreated)
-- before any of its entries, in the same or an earlier transaction: the foreign key guarded nothing
-- the log does not, and checking it was a fifth of the entries insert's server time in a replay.
-- rewindPrismaProjection still deletes entries before their campaign.
-- DropForeignKey
ALTER TABLE "entries" DROP CONSTRAINT "entries_campaign_id_fkey";
