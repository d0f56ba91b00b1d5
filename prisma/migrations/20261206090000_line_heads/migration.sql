-- Signed heads of each campaign's line (issue 31), projected from LineHeadSigned events.
-- CreateTable
CREATE TABLE "line_heads" (
    "campaign_id" TEXT NOT NULL,
    "size" INTEGER NOT NULL,
    "final" BOOLEAN NOT NULL,
    "root" TEXT NOT NULL,
    "at" TEXT NOT NULL,
    "key_id" TEXT NOT NULL,
    "signature" TEXT NOT NULL,
    "log_offset" BIGINT NOT NULL,

    CONSTRAINT "line_heads_pkey" PRIMARY KEY ("campaign_id","size","final")
);
