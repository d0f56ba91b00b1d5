/*
  Warnings:

  - Added the required column `log_offset` to the `gifticons` table without a default value. This is not possible if the table is not empty.

*/
-- AlterTable
ALTER TABLE "gifticons" ADD COLUMN     "log_offset" BIGINT NOT NULL;

-- CreateIndex
CREATE INDEX "gifticons_campaign_id_log_offset_idx" ON "gifticons"("campaign_id", "log_offset");
