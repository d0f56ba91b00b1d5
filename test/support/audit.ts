import { auditCampaign, auditLog, type Audit } from '../../src/domain/audit.js';
import type { Logged } from '../../src/domain/events.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import type { Config } from '../../src/config.js';

/**
 * Reads the whole committed log and audits one campaign's I1–I3 on it. Its `problems` include a
 * code that another campaign of the log was issued too (I2 across campaigns); `log` is the
 * campaign's own events.
 */
export async function auditFromLog(config: Config, campaignId: string): Promise<Audit & { log: Logged[] }> {
  const kafka = createKafka(config, 'audit');
  const all: Logged[] = [];
  await readLog(kafka, config.topics.events, (batch) => void all.push(...batch));
  const whole = auditLog(all);
  const log = all.filter((l) => l.event.campaignId === campaignId);
  const own = whole.campaigns.get(campaignId) ?? auditCampaign([]);
  const problems = [...whole.acrossCampaigns, ...own.problems];
  return { ...own, ok: problems.length === 0, problems, log };
}
