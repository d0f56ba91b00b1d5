-- A PROVIDER winner's gifticon status and its voucher's expiry (issue 30), from IssuanceParked and
-- GifticonIssued events. Both nullable: rows projected before keep reading as they did.
-- AlterTable
ALTER TABLE "winners" ADD COLUMN "issuance_parked_at" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "gifticons" ADD COLUMN "expires_at" TIMESTAMPTZ(3);
