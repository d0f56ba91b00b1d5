-- DropIndex
DROP INDEX "entries_campaign_id_log_offset_idx";
