import { auditCampaign, auditLog, type Audit, type IssuanceFacts } from '../../src/domain/audit.js';
import type { Logged } from '../../src/domain/events.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { createPrisma } from '../../src/infra/prisma/client.js';
import { CodeVault, openerFor } from '../../src/infra/codeKeys/vault.js';
import type { Config } from '../../src/config.js';
import type { ParkedRecord } from '../../src/infra/kafka/parking.js';
import { randomUUID } from 'node:crypto';

/**
 * Reads the whole committed log and audits one campaign's I1–I3 and I6 on it, its sealed codes
 * opened with the campaigns' data keys (the database's `code_data_keys`, CODE_KEYS). Its `problems`
 * include a code that another campaign of the log was issued too (I2 across campaigns); `log` is
 * the campaign's own events; `codes` its winners' codes in plaintext, by user.
 */
export async function auditFromLog(
  config: Config,
  campaignId: string,
  /** for I6 of a PROVIDER campaign whose issuance is quiet: its parked issuances (`parkedIssuances`) */
  issuance?: IssuanceFacts,
): Promise<Audit & { log: Logged[]; codes: Map<string, string> }> {
  const kafka = createKafka(config, 'audit');
  const all: Logged[] = [];
  await readLog(kafka, config.topics.events, (batch) => void all.push(...batch));
  const opened = await openCodes(config, all);
  const open = (e: Logged['event']) => opened.get(e.eventId) ?? null;
  const whole = auditLog(all, open, issuance);
  const log = all.filter((l) => l.event.campaignId === campaignId);
  const own = whole.campaigns.get(campaignId) ?? auditCampaign([], open, issuance);
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

/**
 * The issuances parked in the dead-letter topic (reason `provider`), read whole, as the audit's
 * facts: every one counts as open (a test that retries one reads the `parked` view instead).
 */
export async function parkedIssuances(config: Config): Promise<IssuanceFacts & { records: ParkedRecord[] }> {
  const kafka = createKafka(config, 'audit-parked');
  const records: ParkedRecord[] = [];
  const admin = kafka.admin();
  await admin.connect();
  const [end] = await admin.fetchTopicOffsets(config.topics.parked);
  await admin.disconnect();
  if (end && end.high !== '0') {
    const consumer = kafka.consumer({ groupId: `${config.topics.parked}.audit.${randomUUID()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: config.topics.parked, fromBeginning: true });
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    await consumer.run({
      eachMessage: async ({ message }) => {
        records.push(JSON.parse(String(message.value)) as ParkedRecord);
        if (BigInt(message.offset) + 1n >= BigInt(end.high)) done();
      },
    });
    await finished;
    await consumer.disconnect();
  }
  const open = new Set(
    records
      .filter((r) => r.reason === 'provider' && r.raw)
      .map((r) => {
        const w = JSON.parse(Buffer.from(r.raw!, 'base64').toString('utf8')) as { campaignId: string; userId: string };
        return `${w.campaignId}\n${w.userId}`;
      }),
  );
  return { records, openParked: (campaignId, userId) => open.has(`${campaignId}\n${userId}`) };
}

/** I6 of a quiet PROVIDER campaign in full: the log's audit told of its parked issuances, and the provider's doubles. */
export async function auditProvider(config: Config, campaignId: string, sim: { stats(): { doubles: number } }) {
  const parked = await parkedIssuances(config);
  const audit = await auditFromLog(config, campaignId, parked);
  const doubles = sim.stats().doubles;
  const problems = [...audit.problems, ...(doubles > 0 ? [`I6: the provider issued ${doubles} keys twice`] : [])];
  return { ...audit, ok: problems.length === 0, problems, parked: parked.records };
}

/** The open parked issuances as the `parked` view (Postgres) lists them: PARKED, not RETRIED. */
export async function parkedView(config: Config): Promise<IssuanceFacts> {
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 1 });
  try {
    const rows = await prisma.parkedRecord.findMany({ where: { reason: 'provider', status: 'PARKED' } });
    const open = new Set(
      rows.map((r) => {
        const w = JSON.parse(Buffer.from(r.raw ?? '', 'base64').toString('utf8')) as { campaignId: string; userId: string };
        return `${w.campaignId}\n${w.userId}`;
      }),
    );
    return { openParked: (campaignId, userId) => open.has(`${campaignId}\n${userId}`) };
  } finally {
    await prisma.$disconnect();
  }
}
