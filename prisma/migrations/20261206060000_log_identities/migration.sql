-- Which log each projection of this database was built from (issue 27): the Kafka cluster's id,
-- the topic, its partition count and the id of its genesis record (null for a topic created
-- before genesis records). Checkpoints are offsets, which mean something only within that log.
-- A projection writes its row in the same transaction as its first write; a database whose row
-- names another log is refused until `npm run adopt-log` rebuilds it.
-- CreateTable
CREATE TABLE "log_identities" (
    "projection" TEXT NOT NULL,
    "cluster_id" TEXT NOT NULL,
    "topic" TEXT NOT NULL,
    "partitions" INTEGER NOT NULL,
    "log_id" TEXT,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "log_identities_pkey" PRIMARY KEY ("projection")
);
