-- CreateTable
CREATE TABLE "parked_records" (
    "id" TEXT NOT NULL,
    "consumer" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "error" TEXT NOT NULL,
    "topic" TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "log_offset" BIGINT NOT NULL,
    "key" TEXT,
    "raw" TEXT,
    "parked_at" TIMESTAMPTZ(3) NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'PARKED',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "retried_at" TIMESTAMPTZ(3),
    "retried_as" TEXT,

    CONSTRAINT "parked_records_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "parked_records_parked_at_id_idx" ON "parked_records"("parked_at", "id");
