import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerHost } from '../../src/read-side/consumerHost.js';
import { Parking } from '../../src/infra/kafka/parking.js';
import { createPrisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { randomBytes } from 'node:crypto';
import type { EventStoreDBClient } from '@eventstore/db-client';
import { EVENT_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import { createEventStore, readCampaignEvents, streamTail } from '../../src/infra/eventstore/eventStore.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { readLog } from '../../src/infra/kafka/reader.js';
import { logger } from '../../src/logger.js';
import { EventStoreArchive } from '../../projections/eventstore-archive/archive.js';
import { Lag } from '../../projections/lag.js';
import { eventually, isolated, type Isolated } from '../support/app.js';

/**
 * The EventStoreDB archive against a real server. None can be had on our build machines (see
 * FACTS.md), so without EVENTSTORE_URL this suite is skipped, and says so.
 */
const URL = process.env.EVENTSTORE_URL;
const SKIPPED = 'skipped: no EventStoreDB (EVENTSTORE_URL unset)';
if (!URL) console.log(`eventstore.int.spec.ts: ${SKIPPED}`);

describe.skipIf(!URL)(URL ? `EventStoreDB archive at ${URL}` : SKIPPED, () => {
  let iso: Isolated;
  let client: EventStoreDBClient;
  let archive: EventStoreArchive;
  let host: ConsumerHost;
  let prisma: PrismaClient;
  const campaignId = `es-${randomBytes(4).toString('hex')}`;
  const at = new Date().toISOString();
  const base = { version: EVENT_VERSION, campaignId, occurredAt: at } as const;
  const events: CampaignEvent[] = [
    {
      ...base,
      type: 'CampaignCreated',
      eventId: `created:${campaignId}`,
      title: 'ES',
      reward: 'Coffee',
      stock: 2,
      opensAt: at,
      closesAt: new Date(Date.now() + 3_600_000).toISOString(),
    },
    ...Array.from({ length: 50 }, (_, i): CampaignEvent => ({
      ...base,
      type: 'EntrantRegistered',
      eventId: `entrant:${campaignId}:u${i}:r${i}`,
      userId: `u${i}`,
    })),
    { ...base, type: 'WinnerSelected', eventId: `winner:${campaignId}:u0`, userId: 'u0', position: 1, ticket: '0-1' },
    {
      ...base,
      type: 'GifticonIssued',
      eventId: `gifticon:${campaignId}:u0`,
      userId: 'u0',
      gifticonId: 'g_es',
      code: 'ABCD-EFGH-JKMN-PQRS-TVWX-YZ01-23',
      position: 1,
    },
  ];
  const log: Logged[] = [];

  beforeAll(async () => {
    iso = await isolated('eventstore_int', { EVENTSTORE_URL: URL! });
    const kafka = createKafka(iso.config, 'es-test');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, iso.config);
    await admin.disconnect();
    const appender = await EventAppender.connect(kafka, iso.config);
    await Promise.all(events.map((e) => appender.append(e)));
    await appender.close();
    await readLog(kafka, iso.config.topics.events, (batch) => void log.push(...batch.filter((l) => l.event.campaignId === campaignId)));
    client = createEventStore(URL!);
    prisma = createPrisma(iso.config.DATABASE_URL);
    archive = new EventStoreArchive(createEventStore(URL!), prisma, iso.config.topics.events, new Lag('eventstore-archive', logger));
    host = new ConsumerHost(kafka, iso.config, await Parking.connect(kafka, iso.config));
    host.add(archive);
    await host.start();
  });

  afterAll(async () => {
    await host?.stop();
    await archive?.stop();
    await prisma?.$disconnect();
    await client?.dispose();
    await iso?.cleanup();
  });

  const archived = async () => {
    const out: Logged[] = [];
    for await (const l of readCampaignEvents(client, campaignId)) out.push(l);
    return out;
  };

  it('appends every event of the log to campaign-<id>, in log order, with its place in the log', async () => {
    const got = await eventually(archived, (a) => a.length === events.length, 30_000);
    expect(got).toEqual(log);
  });

  it('a re-delivery appends nothing: by log offset, and by the deterministic event ids', async () => {
    const tail = await streamTail(client, campaignId);
    await archive.archive(log); // the same batch again
    const fresh = new EventStoreArchive(createEventStore(URL!), prisma, iso.config.topics.events, new Lag('x', logger));
    await fresh.archive(log.slice(10)); // a member that knows nothing yet
    await fresh.stop();
    expect(await streamTail(client, campaignId)).toEqual(tail);
    expect(await archived()).toEqual(log);
  });

  it('reads nothing for a campaign it never saw', async () => {
    expect(
      await (async () => {
        const out: Logged[] = [];
        for await (const l of readCampaignEvents(client, `${campaignId}-none`)) out.push(l);
        return out;
      })(),
    ).toEqual([]);
  });
});
