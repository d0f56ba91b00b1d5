import { Kafka, logLevel } from 'kafkajs';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import { CodeVault } from '../../src/infra/codeKeys/vault.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { readLogIdentity } from '../../src/infra/kafka/genesis.js';
import { Parking } from '../../src/infra/kafka/parking.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { Issuer } from '../../src/issuer/issuer.js';
import { idempotencyKey } from '../../src/issuer/keys.js';
import { SingleWriter } from '../../src/writer/singleWriter.js';
import { createRedis, RedisOrdering, writerPorts } from '../../projections/redis-ordering/index.js';
import { isolated, type Isolated } from '../support/app.js';
import { auditProvider, parkedIssuances } from '../support/audit.js';
import { simAndClient } from '../support/provider.js';
import { waitUntil, whenCaughtUp } from '../support/wait.js';

/**
 * The issuer role's consumer against the real broker, Postgres and the provider simulator over
 * HTTP: a PROVIDER campaign decided by the real single writer, its winners' vouchers called for and
 * appended. No mock anywhere; faults are the simulator's own.
 */

let iso: Isolated | null = null;
let redis: Redis | null = null;
let prisma: PrismaClient | null = null;
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  redis?.disconnect();
  await prisma?.$disconnect();
  await iso?.cleanup();
  iso = redis = prisma = null;
});

const CAMPAIGN = 'vouchers';

async function drop(
  name: string,
  stock: number,
  entrants: number,
  sim: Parameters<typeof simAndClient>[0],
  client: Parameters<typeof simAndClient>[1] = {},
) {
  iso = await isolated(name, { EVENT_PARTITIONS: '2' });
  const { config } = iso;
  const kafka = new Kafka({ clientId: 'issuer-int', brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config, kafka);
  const identity = await readLogIdentity(kafka, admin, config.topics.events);
  await admin.disconnect();

  const now = Date.now();
  const events: CampaignEvent[] = [
    {
      type: 'CampaignCreated',
      version: EVENT_VERSION,
      eventId: `created:${CAMPAIGN}`,
      campaignId: CAMPAIGN,
      occurredAt: new Date(now).toISOString(),
      title: 'Vouchers',
      reward: 'Chicken',
      stock,
      opensAt: new Date(now - 1000).toISOString(),
      closesAt: new Date(now + 3_600_000).toISOString(),
      issuance: 'PROVIDER',
      product: 'chicken-10000',
    },
  ];
  for (let i = 0; i < entrants; i++) {
    events.push({
      type: 'EntrantRegistered',
      version: EVENT_VERSION,
      eventId: `entrant:${CAMPAIGN}:u${i}:r`,
      campaignId: CAMPAIGN,
      occurredAt: new Date(now).toISOString(),
      userId: `u${i}`,
    });
  }
  const appender = await EventAppender.connect(kafka, config);
  for (const e of events) await appender.append(e);
  await appender.close();

  redis = createRedis(config.REDIS_URL);
  const parking = await Parking.connect(kafka, config);
  stops.push(() => parking.close());
  const writer = new SingleWriter(kafka, writerPorts(new RedisOrdering(redis, config.REDIS_PREFIX), config.topics.events), config, parking);
  await writer.start();
  stops.push(() => writer.stop());

  const pair = await simAndClient(sim, client);
  stops.push(() => pair.sim.close());
  prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
  const vault = new CodeVault(prisma, config.CODE_KEYS);
  const startIssuer = async () => {
    const issuer = new Issuer(kafka, config, { client: pair.client, vault, parking, logIdentity: identity, chunk: 25 });
    await issuer.start();
    stops.push(() => issuer.stop());
    return issuer;
  };
  return { config, kafka, identity, vault, sim: pair.sim, startIssuer };
}

async function campaignLog(config: Isolated['config'], kafka: Kafka) {
  const out: CampaignEvent[] = [];
  await readLog(kafka, config.topics.events, (b) => void out.push(...b.filter((l) => l.event.campaignId === CAMPAIGN).map((l) => l.event)));
  return out;
}

const gifticons = (log: CampaignEvent[]) => log.filter((e) => e.type === 'GifticonIssued');

describe('the issuer against the provider simulator', () => {
  it('transient errors and timeouts after issuing: each winner gets exactly one GifticonIssued, and no key is issued twice', async () => {
    const stock = 60;
    const d = await drop(
      'issuer-transient',
      stock,
      80,
      { latencyMs: 5, errorRate: 0.3, timeoutRate: 0.2 },
      { timeoutMs: 300, breaker: { threshold: 0.9, windowMs: 2000, minCallsPerSec: 5, openMs: 300 } },
    );
    await d.startIssuer();
    const log = await waitUntil(
      () => campaignLog(d.config, d.kafka),
      (l) => gifticons(l).length >= stock,
      { what: 'every winner issued', timeoutMs: 60_000 },
    );
    await whenCaughtUp(d.config, d.config.groups.issuer, { oneShort: true });
    const settled = await campaignLog(d.config, d.kafka);
    const winners = settled.filter((e) => e.type === 'WinnerSelected');
    const issued = gifticons(settled);
    expect(winners).toHaveLength(stock);
    expect(issued).toHaveLength(stock);
    expect(new Set(issued.map((g) => g.userId))).toEqual(new Set(winners.map((w) => w.userId)));
    // the faults did happen: some calls were 5xx, some answers were lost after the voucher was issued
    const histories = winners.map((w) => d.sim.history(idempotencyKey(d.identity, w.eventId)));
    expect(histories.filter((h) => h.some((s) => s.status === null)).length).toBeGreaterThan(3);
    expect(histories.filter((h) => h.some((s) => s.status !== null && s.status >= 500)).length).toBeGreaterThan(3);
    expect(d.sim.stats()).toMatchObject({ issued: stock, keys: stock, doubles: 0 });
    // each event carries the provider's voucher, its code sealed: opened, it is the voucher's code
    for (const g of issued) {
      expect(g.version).toBe(2);
      expect('sealedCode' in g && g.voucherId && g.expiresAt).toBeTruthy();
      if (!('sealedCode' in g)) continue;
      expect(JSON.stringify(g)).not.toContain(await d.vault.open(CAMPAIGN, g.sealedCode));
    }
    expect(log.length).toBeGreaterThan(0);
    expect((await auditProvider(d.config, CAMPAIGN, d.sim)).problems).toEqual([]);
  });

  it('an issuer started again after its commits reads the log and calls for no winner twice', async () => {
    const stock = 30;
    const d = await drop('issuer-restart', stock, 30, { latencyMs: 2 });
    const first = await d.startIssuer();
    await waitUntil(
      () => campaignLog(d.config, d.kafka),
      (l) => gifticons(l).length >= stock,
      { what: 'every winner issued', timeoutMs: 60_000 },
    );
    await whenCaughtUp(d.config, d.config.groups.issuer, { oneShort: true });
    const calls = d.sim.stats();
    await first.stop();
    // the next issuer's group starts from the committed offsets; a ledger from the log makes sure
    // even a winner read again is not called for: rewind its group to offset 0 to read them all
    const admin = d.kafka.admin();
    await admin.connect();
    await admin.resetOffsets({ groupId: d.config.groups.issuer, topic: d.config.topics.events, earliest: true });
    await admin.disconnect();
    const second = await d.startIssuer();
    await second.ready();
    await whenCaughtUp(d.config, d.config.groups.issuer, { oneShort: true });
    expect(d.sim.stats()).toEqual(calls);
    expect(gifticons(await campaignLog(d.config, d.kafka))).toHaveLength(stock);
    expect((await auditProvider(d.config, CAMPAIGN, d.sim)).problems).toEqual([]);
  });

  it("a batch's chunks are called for together, and committed in order: one chunk's slowest call holds no other's", async () => {
    const stock = 100;
    // 50 ms a call, 80 at once: chunk by chunk (25 each, startIssuer's) the provider would never see more than 25
    const d = await drop('issuer-pipelined', stock, stock, { latencyMs: 50 }, { concurrency: 80 });
    // every winner decided before the issuer starts: its first batch holds them all
    await waitUntil(
      () => campaignLog(d.config, d.kafka),
      (l) => l.filter((e) => e.type === 'WinnerSelected').length >= stock,
      { what: 'every winner selected' },
    );
    await d.startIssuer();
    await waitUntil(
      () => campaignLog(d.config, d.kafka),
      (l) => gifticons(l).length >= stock,
      { what: 'every winner issued', timeoutMs: 60_000 },
    );
    expect(d.sim.stats().maxInFlight).toBeGreaterThan(25);
    expect(d.sim.stats()).toMatchObject({ issued: stock, keys: stock, doubles: 0 });
    // the chunks' transactions in offset order: the gifticons follow the winners' positions
    const positions = gifticons(await campaignLog(d.config, d.kafka)).map((g) => g.position);
    expect(positions).toEqual([...positions].sort((x, y) => x - y));
    expect((await auditProvider(d.config, CAMPAIGN, d.sim)).problems).toEqual([]);
  });

  it('a retry waits behind the next few chunks, not behind the whole batch: the first chunk is committed early', async () => {
    const stock = 1200;
    // 100 ms a call, 20 at once: 200 calls a second. A fifth of the calls fail, so the first chunk of
    // 25 surely holds a retry: queued behind all 1,200 first calls, it could not commit before they
    // were made. Behind the window (2 × PROVIDER_RATE_PER_SEC, 200 here) each attempt waits about a
    // second; the first commit would need a winner failing five times in a row to reach 1,200
    const d = await drop('issuer-window', stock, stock, { latencyMs: 100, errorRate: 0.2 }, { concurrency: 20 });
    await waitUntil(
      () => campaignLog(d.config, d.kafka),
      (l) => l.filter((e) => e.type === 'WinnerSelected').length >= stock,
      { what: 'every winner selected' },
    );
    await d.startIssuer();
    await waitUntil(
      () => campaignLog(d.config, d.kafka),
      (l) => gifticons(l).length > 0,
      { what: 'the first chunk committed', timeoutMs: 60_000, everyMs: 50 },
    );
    expect(d.sim.stats().requests).toBeLessThan(stock);
    await waitUntil(
      () => campaignLog(d.config, d.kafka),
      (l) => gifticons(l).length >= stock,
      { what: 'every winner issued', timeoutMs: 60_000 },
    );
    expect(d.sim.stats()).toMatchObject({ issued: stock, keys: stock, doubles: 0 });
  });

  it("a permanent refusal parks the winner's issuance with the provider's answer and moves on", async () => {
    const stock = 10;
    const d = await drop('issuer-permanent', stock, 10, { latencyMs: 2, permanentRate: 1 });
    await d.startIssuer();
    const { records: parked } = await waitUntil(
      () => parkedIssuances(d.config),
      (r) => new Set(r.records.map((x) => x.id)).size >= stock,
      { what: 'every issuance parked', timeoutMs: 60_000 },
    );
    await whenCaughtUp(d.config, d.config.groups.issuer, { oneShort: true });
    expect(parked.every((r) => r.reason === 'provider' && r.consumer === 'issuer')).toBe(true);
    expect(parked[0]!.error).toContain('HTTP 422');
    expect(parked[0]!.error).toContain('recipient_not_eligible');
    const log = await campaignLog(d.config, d.kafka);
    expect(gifticons(log)).toHaveLength(0);
    // each parking is a fact of the log too, naming its record: the winner's FAILED in every projection and replay
    const parkings = log.flatMap((e) => (e.type === 'IssuanceParked' ? [e] : []));
    expect(new Set(parkings.map((e) => e.parkedId))).toEqual(new Set(parked.map((r) => r.id)));
    expect(new Set(parkings.map((e) => e.userId)).size).toBe(stock);
    expect(d.sim.stats()).toMatchObject({ issued: 0, doubles: 0 });
    expect((await auditProvider(d.config, CAMPAIGN, d.sim)).problems).toEqual([]);
  });
});
