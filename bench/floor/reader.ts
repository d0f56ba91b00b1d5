import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../src/config.js';
import { cryptoMinter, eventsForPlace } from '../../src/domain/campaign.js';
import { ticketOf, type CampaignEvent } from '../../src/domain/events.js';
import { newDataKey, sealCode } from '../../src/domain/sealing.js';
import { createKafka } from '../../src/infra/kafka/client.js';
import { decodeMessage } from '../../src/infra/kafka/codec.js';
import { roleConsumer } from '../../src/infra/kafka/consumer.js';
import { logger } from '../../src/logger.js';
import { KafkaDecisionSink } from '../../src/writer/kafkaSink.js';
import { FLOOR_CAMPAIGNS, type FloorReply } from './steps.js';

/**
 * The reading rungs of the floor (bench/floor.ts), in their own thread as the single writer is: one
 * consumer of committed records with the writer's settings, which reads every entry back and tells
 * the API thread its place (`read`); for `decide`, each place also becomes a winner's two events,
 * committed with the partition's input offset in one Kafka transaction through the writer's own
 * sink, at most every WRITER_COMMIT_MS per partition. No Redis, no domain state beyond a counter:
 * what is left is the cost the log itself asks of any design that decides from it.
 */
const { config } = workerData as { config: Config };
/** the writer seals every code it mints: so does the floor's decide rung, under a key of its own */
const benchKey = newDataKey('floor');
const benchSealer = { seal: (_campaignId: string, code: string) => sealCode(benchKey, code) };
const port = parentPort!;
const log = logger.child({ component: 'floor-reader' });
const kafka = createKafka(config, 'floor-reader');
const sink = new KafkaDecisionSink(kafka, config, log);
const consumer = roleConsumer(kafka, config.groups.writer, config.WRITER_MAX_WAIT_MS);

const placed = new Map<string, number>();
/** per partition: decisions not committed yet, and the input offset they commit */
const open = new Map<number, { outputs: CampaignEvent[]; next: bigint; lastCommit: number; timer: NodeJS.Timeout | null }>();
let commits: Promise<void> = Promise.resolve();

function commitNow(p: number): void {
  const o = open.get(p)!;
  if (o.timer) clearTimeout(o.timer);
  o.timer = null;
  const outputs = o.outputs;
  o.outputs = [];
  o.lastCommit = Date.now();
  commits = commits.then(() => sink.commit(p, outputs, o.next)).catch((err: unknown) => log.error({ err }, 'floor commit failed'));
}

await consumer.connect();
await consumer.subscribe({ topic: config.topics.events, fromBeginning: true });
await consumer.run({
  autoCommit: false,
  eachBatch: async ({ batch }) => {
    const replies: FloorReply[] = [];
    const outputs: CampaignEvent[] = [];
    const now = new Date();
    for (const m of batch.messages) {
      for (const d of decodeMessage(m, batch.partition)) {
        if (d.kind !== 'event') continue;
        const { event: e, partition, offset } = d.logged;
        if (e.type !== 'EntrantRegistered' || !e.replyTo) continue;
        const position = (placed.get(e.campaignId) ?? 0) + 1;
        placed.set(e.campaignId, position);
        const ticket = ticketOf(partition, offset);
        replies.push({ request: e.replyTo.request, ticket, position });
        if (e.campaignId === FLOOR_CAMPAIGNS.decide)
          outputs.push(
            ...eventsForPlace(
              e.campaignId,
              { stock: Number.MAX_SAFE_INTEGER },
              e.userId,
              { position, ticket },
              now,
              cryptoMinter,
              benchSealer,
            ),
          );
      }
    }
    if (replies.length > 0) port.postMessage(replies);
    if (outputs.length === 0) return;
    const p = batch.partition;
    let o = open.get(p);
    if (!o) open.set(p, (o = { outputs: [], next: 0n, lastCommit: 0, timer: null }));
    o.outputs.push(...outputs);
    o.next = BigInt(batch.lastOffset()) + 1n;
    const wait = o.lastCommit + config.WRITER_COMMIT_MS - Date.now();
    if (wait <= 0) commitNow(p);
    else o.timer ??= setTimeout(() => commitNow(p), wait);
  },
});
port.postMessage('ready');
