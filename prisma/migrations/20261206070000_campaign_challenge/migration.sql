-- A campaign's proof-of-work setting (issue 34), as its CampaignCreated and its last
-- CampaignChallengeSet in the log say. Every campaign made before is OFF.
-- AlterTable
ALTER TABLE "campaigns" ADD COLUMN "challenge_mode" TEXT NOT NULL DEFAULT 'OFF',
ADD COLUMN "challenge_difficulty" INTEGER;
