-- CreateTable
CREATE TABLE "campaigns" (
    "id" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "reward" TEXT NOT NULL,
    "stock" INTEGER NOT NULL,
    "opens_at" TIMESTAMPTZ(3) NOT NULL,
    "closes_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "closed_at" TIMESTAMPTZ(3),
    "sold_out_at" TIMESTAMPTZ(3),
    "entrants" INTEGER NOT NULL DEFAULT 0,
    "winners" INTEGER NOT NULL DEFAULT 0,
    "requests" INTEGER NOT NULL DEFAULT 0,
    "first_entry_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "campaigns_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "entries" (
    "campaign_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "ticket" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "log_offset" BIGINT NOT NULL,
    "entered_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "entries_pkey" PRIMARY KEY ("campaign_id","user_id")
);

-- CreateTable
CREATE TABLE "winners" (
    "campaign_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "won_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "winners_pkey" PRIMARY KEY ("campaign_id","user_id")
);

-- CreateTable
CREATE TABLE "gifticons" (
    "id" TEXT NOT NULL,
    "campaign_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "code" TEXT NOT NULL,
    "issued_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "gifticons_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "projection_checkpoints" (
    "projection" TEXT NOT NULL,
    "topic" TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "next_offset" BIGINT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "projection_checkpoints_pkey" PRIMARY KEY ("projection","topic","partition")
);

-- CreateTable
CREATE TABLE "campaign_reports" (
    "id" BIGSERIAL NOT NULL,
    "campaign_id" TEXT NOT NULL,
    "entrants" INTEGER NOT NULL,
    "requests" INTEGER NOT NULL,
    "winners" INTEGER NOT NULL,
    "issued" INTEGER NOT NULL,
    "first_entry_at" TIMESTAMPTZ(3),
    "opened_at" TIMESTAMPTZ(3) NOT NULL,
    "sold_out_at" TIMESTAMPTZ(3),
    "sell_out_ms" BIGINT,
    "generated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "campaign_reports_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "entries_campaign_id_position_key" ON "entries"("campaign_id", "position");

-- CreateIndex
CREATE INDEX "entries_campaign_id_log_offset_idx" ON "entries"("campaign_id", "log_offset");

-- CreateIndex
CREATE UNIQUE INDEX "winners_campaign_id_position_key" ON "winners"("campaign_id", "position");

-- CreateIndex
CREATE UNIQUE INDEX "gifticons_code_key" ON "gifticons"("code");

-- CreateIndex
CREATE UNIQUE INDEX "gifticons_campaign_id_user_id_key" ON "gifticons"("campaign_id", "user_id");

-- CreateIndex
CREATE INDEX "gifticons_campaign_id_issued_at_idx" ON "gifticons"("campaign_id", "issued_at");

-- CreateIndex
CREATE INDEX "campaign_reports_campaign_id_generated_at_idx" ON "campaign_reports"("campaign_id", "generated_at" DESC);

-- AddForeignKey
ALTER TABLE "entries" ADD CONSTRAINT "entries_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "campaigns"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
