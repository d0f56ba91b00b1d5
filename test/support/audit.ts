import { auditCampaign, auditLog, type Audit } from '../../src/domain/audit.js';
import type { Logged } from '../../src/domain/events.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { createPrisma } from '../../src/infra/prisma/client.js';
import { CodeVault, openerFor } from '../../src/infra/codeKeys/vault.js';
import type { Config } from '../../src/config.js';

/**
 * Reads the whole committed log and audits one campaign's I1–I3 and I6 on it, its sealed codes
 * opened with the campaigns' data keys (the database's `code_data_keys`, CODE_KEYS). Its `problems`
 * include a code that another campaign of the log was issued too (I2 across campaigns); `log` is
 * the campaign's own events; `codes` its winners' codes in plaintext, by user.
 */
export async function auditFromLog(config: Config, campaignId: string): Promise<Audit & { log: Logged[]; codes: Map<string, string> }> {
  const kafka = createKafka(config, 'audit');
  const all: Logged[] = [];
  await readLog(kafka, config.topics.events, (batch) => void all.push(...batch));
  const opened = await openCodes(config, all);
  const open = (e: Logged['event']) => opened.get(e.eventId) ?? null;
  const whole = auditLog(all, open);
  const log = all.filter((l) => l.event.campaignId === campaignId);
  const own = whole.campaigns.get(campaignId) ?? auditCampaign([]);
  const problems = [...whole.acrossCampaigns, ...own.problems];
  const codes = new Map(
    log.flatMap((l) =>
      l.event.type === 'GifticonIssued' && opened.has(l.event.eventId) ? [[l.event.userId, opened.get(l.event.eventId)!]] : [],
    ),
  );
  return { ...own, ok: problems.length === 0, problems, log, codes };
}

/** Every gifticon's code in plaintext, by event id (src/infra/codeKeys/vault.ts's openerFor); one whose key cannot be had is left out. */
export async function openCodes(config: Config, log: readonly Logged[]): Promise<Map<string, string>> {
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
  try {
    const open = await openerFor(new CodeVault(prisma, config.CODE_KEYS), log);
    const out = new Map<string, string>();
    for (const { event: e } of log) {
      const code = e.type === 'GifticonIssued' ? open(e) : null;
      if (code !== null) out.set(e.eventId, code);
    }
    return out;
  } finally {
    await prisma.$disconnect();
  }
}
