import { Kafka, logLevel, type Producer, type ProducerRecord, type Transaction } from 'kafkajs';
import { Parking } from '../../src/infra/kafka/parking.js';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { SingleWriter } from '../../src/writer/singleWriter.js';
import { EVENT_VERSION, type CampaignEvent } from '../../src/domain/events.js';
import { ensureTopics } from '../../src/infra/kafka/topics.js';
import { EventAppender } from '../../src/infra/kafka/appender.js';
import { createRedis, RedisOrdering, writerPorts } from '../../projections/redis-ordering/index.js';
import { auditFromLog } from '../support/audit.js';
import { isolated, type Isolated } from '../support/app.js';
import { logEnds, waitUntil, whenCaughtUp } from '../support/wait.js';

/**
 * The writer against the real broker and Redis, with one fault injected into its transactions:
 * the broker's answer to a commit is lost. The commit itself is real; only the outcome the writer
 * hears is not.
 */
type Fault = 'commit-landed-then-error' | 'error-before-commit';

/**
 * The real client, whose transactional producers meet `fault` once, on the `at`-th commit. The
 * types of the events that transaction carried are kept in `injected.carried`.
 */
function faultyKafka(kafka: Kafka, fault: Fault, at: number) {
  let commits = 0;
  const injected = { count: 0, carried: [] as string[] };
  const wrap = (producer: Producer): Producer =>
    new Proxy(producer, {
      get(target, prop, receiver) {
        if (prop !== 'transaction') return Reflect.get(target, prop, receiver);
        return async () => {
          const tx = await target.transaction();
          const sent: string[] = [];
          return new Proxy(tx, {
            get(t, name, r) {
              if (name === 'send') {
                return async (record: ProducerRecord) => {
                  // a packed record (one per campaign per commit) holds several events
                  for (const m of record.messages)
                    for (const e of [JSON.parse(String(m.value)) as CampaignEvent | CampaignEvent[]].flat()) sent.push(e.type);
                  return t.send(record);
                };
              }
              if (name !== 'commit' || ++commits !== at) return Reflect.get(t, name, r);
              return async () => {
                injected.count++;
                injected.carried = sent;
                // the first kind lands and then looks failed; the second stays open, in doubt
                if (fault === 'commit-landed-then-error') await t.commit();
                throw new Error(`injected: the answer to EndTxn was lost (${fault})`);
              };
            },
          }) as Transaction;
        };
      },
    });
  const proxy = new Proxy(kafka, {
    get(target, prop, receiver) {
      if (prop === 'producer') return (opts: Parameters<Kafka['producer']>[0]) => wrap(target.producer(opts));
      return Reflect.get(target, prop, receiver);
    },
  });
  return { kafka: proxy, injected };
}

let iso: Isolated | null = null;
let redis: Redis | null = null;
let writer: SingleWriter | null = null;
afterEach(async () => {
  await writer?.stop();
  redis?.disconnect();
  await iso?.cleanup();
  writer = redis = iso = null;
});

describe('the writer when the outcome of a commit is unknown', () => {
  for (const fault of ['commit-landed-then-error', 'error-before-commit'] as const) {
    it(`${fault}: settles the transaction first, so every winner gets exactly one gifticon`, async () => {
      iso = await isolated(`writer-${fault === 'commit-landed-then-error' ? 'landed' : 'open'}`, { EVENT_PARTITIONS: '1' });
      const { config } = iso;
      const kafka = new Kafka({ clientId: 'writer-int', brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      await ensureTopics(admin, config);
      await admin.disconnect();

      const stock = 40;
      const now = Date.now();
      const events: CampaignEvent[] = [
        {
          type: 'CampaignCreated',
          version: EVENT_VERSION,
          eventId: 'created:doubt',
          campaignId: 'doubt',
          occurredAt: new Date(now).toISOString(),
          title: 'Doubt',
          reward: 'Cake',
          stock,
          opensAt: new Date(now - 1000).toISOString(),
          closesAt: new Date(now + 3_600_000).toISOString(),
        },
      ];
      for (let i = 0; i < 60; i++) {
        events.push({
          type: 'EntrantRegistered',
          version: EVENT_VERSION,
          eventId: `entrant:doubt:u${i}:r`,
          campaignId: 'doubt',
          occurredAt: new Date(now).toISOString(),
          userId: `u${i}`,
        });
      }
      const appender = await EventAppender.connect(kafka, config);
      await Promise.all(events.map((e) => appender.append(e)));
      await appender.close();

      redis = createRedis(config.REDIS_URL);
      // the first commit carries winners: the one whose outcome is lost
      const faulty = faultyKafka(kafka, fault, 1);
      writer = new SingleWriter(
        faulty.kafka,
        writerPorts(new RedisOrdering(redis, config.REDIS_PREFIX), config.topics.events),
        config,
        await Parking.connect(kafka, config),
      );
      await writer.start();

      const audit = await waitUntil(
        () => auditFromLog(config, 'doubt'),
        (a) => a.winners >= stock && a.gifticons >= stock,
        { what: 'every winner decided' },
      );
      expect(faulty.injected.count).toBe(1);
      // the commit whose outcome was lost carried winners and their gifticons
      expect(faulty.injected.carried).toContain('WinnerSelected');
      expect(faulty.injected.carried).toContain('GifticonIssued');
      // a writer that decided the batch again appends its second gifticons before its offsets pass
      // them (same transaction): once its group has read the whole log and the end stands, it is done
      const ends = await logEnds(config);
      await whenCaughtUp(config, config.groups.writer, { oneShort: true });
      expect(await logEnds(config)).toEqual(ends);
      const settled = await auditFromLog(config, 'doubt');
      expect(settled.problems).toEqual([]);
      expect(settled.entrants).toBe(60);
      expect(settled.winners).toBe(stock);
      expect(settled.log.filter((l) => l.event.type === 'GifticonIssued')).toHaveLength(stock);
      expect(audit.gifticons).toBe(stock);
    });
  }
});
