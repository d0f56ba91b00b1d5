-- AlterTable
ALTER TABLE "campaign_reports" ADD COLUMN     "job_id" TEXT,
ADD COLUMN     "trigger" TEXT NOT NULL DEFAULT 'demand';

-- CreateIndex
CREATE UNIQUE INDEX "campaign_reports_job_id_key" ON "campaign_reports"("job_id");
