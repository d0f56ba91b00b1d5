import { auditCampaign, type Audit } from '../../src/domain/audit.js';
import type { Logged } from '../../src/domain/events.js';
import { createKafka, partitionFor, readLog } from '../../src/infra/kafka/eventLog.js';
import type { Config } from '../../src/config.js';

/** Reads one campaign's committed events from the real log and audits I1–I3 on them. */
export async function auditFromLog(config: Config, campaignId: string): Promise<Audit & { log: Logged[] }> {
  const kafka = createKafka(config, 'audit');
  const log: Logged[] = [];
  await readLog(
    kafka,
    config.topics.events,
    (batch) => {
      for (const l of batch) if (l.event.campaignId === campaignId) log.push(l);
    },
    { partitions: [partitionFor(campaignId, config.EVENT_PARTITIONS)] },
  );
  return { ...auditCampaign(log), log };
}
