-- DropIndex
DROP INDEX "gifticons_campaign_id_issued_at_idx";
