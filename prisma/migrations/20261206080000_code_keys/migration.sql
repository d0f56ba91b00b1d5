-- Gifticon codes are sealed at rest (issue 29): each campaign's data key, wrapped by a
-- key-encryption key of the key ring (CODE_KEYS), and the record of every admin read of codes.
-- Neither is a projection of the log: no replay, flush or rewind touches them. Losing
-- `code_data_keys` loses every code sealed under its keys (docs/operations.md: back it up).
-- CreateTable
CREATE TABLE "code_data_keys" (
    "key_id" TEXT NOT NULL,
    "campaign_id" TEXT NOT NULL,
    "kek_id" TEXT,
    "wrapped" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "rotated_at" TIMESTAMPTZ(3),
    "shredded_at" TIMESTAMPTZ(3),

    CONSTRAINT "code_data_keys_pkey" PRIMARY KEY ("key_id")
);

-- CreateTable
CREATE TABLE "code_reads" (
    "id" BIGSERIAL NOT NULL,
    "reader" TEXT NOT NULL,
    "campaign_id" TEXT NOT NULL,
    "field" TEXT NOT NULL,
    "codes" INTEGER NOT NULL,
    "read_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "code_reads_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "code_data_keys_campaign_id_key" ON "code_data_keys"("campaign_id");

-- CreateIndex
CREATE INDEX "code_reads_read_at_id_idx" ON "code_reads"("read_at", "id");
