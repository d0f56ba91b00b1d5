import { Consumer, FetchIsolationLevels, Producer, type Message } from '@platformatic/kafka';
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../src/config.js';
import { cryptoMinter, eventsForPlace } from '../../src/domain/campaign.js';
import { ticketOf, type CampaignEvent } from '../../src/domain/events.js';
import { newDataKey, sealCode } from '../../src/domain/sealing.js';
import { decodeRecord, toPackedMessages } from '../../src/infra/kafka/codec.js';
import { logger } from '../../src/logger.js';
import { brokersOf, toRecord } from './platformatic.js';
import { FLOOR_CAMPAIGNS, type FloorReply } from './steps.js';

/**
 * reader.ts on @platformatic/kafka: one read_committed consumer of the writer's group, which tells
 * the API thread each entry's place (`read`); for `decide`, each place is a winner's events,
 * committed with the partition's input offset in one Kafka transaction (AddOffsetsToTxn and
 * TxnOffsetCommit, as KafkaJS's sendOffsets), at most every WRITER_COMMIT_MS per partition.
 */
const { config } = workerData as { config: Config };
/** the writer seals every code it mints: so does the floor's decide rung, under a key of its own */
const benchKey = newDataKey('floor');
const benchSealer = { seal: (_campaignId: string, code: string) => sealCode(benchKey, code) };
const port = parentPort!;
const log = logger.child({ component: 'floor-reader' });
type Msg = Message<Buffer, Buffer, Buffer, Buffer>;

const consumer = new Consumer({
  clientId: 'floor-reader',
  bootstrapBrokers: brokersOf(config),
  groupId: config.groups.writer,
  autocommit: false,
  isolationLevel: FetchIsolationLevels.READ_COMMITTED,
  maxWaitTime: config.WRITER_MAX_WAIT_MS,
  minBytes: 1,
  sessionTimeout: 10_000,
  heartbeatInterval: 500,
});
const producer = new Producer({
  clientId: 'floor-writer',
  bootstrapBrokers: brokersOf(config),
  idempotent: true,
  acks: -1,
  transactionalId: `${config.groups.writer}-floor-tx`,
  compression: config.KAFKA_COMPRESSION as never,
});

const placed = new Map<string, number>();
/** per partition: decisions not committed yet, and the last input record they commit past */
const open = new Map<number, { outputs: CampaignEvent[]; last: Msg | null; lastCommit: number; timer: NodeJS.Timeout | null }>();
let commits: Promise<void> = Promise.resolve();

function commitNow(p: number): void {
  const o = open.get(p)!;
  if (o.timer) clearTimeout(o.timer);
  o.timer = null;
  const outputs = o.outputs;
  const last = o.last!;
  o.outputs = [];
  o.lastCommit = Date.now();
  commits = commits
    .then(async () => {
      const tx = await producer.beginTransaction();
      try {
        // the offsets first, as the single writer's sink sends them
        await tx.addConsumer(consumer);
        await tx.addOffset(last);
        if (outputs.length > 0)
          await tx.send({ messages: toPackedMessages(outputs, config.EVENT_PARTITIONS).map((m) => toRecord(m, config.topics.events)) });
        await tx.commit();
      } catch (err) {
        await tx.abort().catch(() => undefined);
        throw err;
      }
    })
    .catch((err: unknown) => log.error({ err }, 'floor commit failed'));
}

/** The records of one turn of the event loop, handled together as KafkaJS's eachBatch hands a fetch. */
let turn: Msg[] = [];
function handle(): void {
  const batch = turn;
  turn = [];
  const replies: FloorReply[] = [];
  const byPartition = new Map<number, { outputs: CampaignEvent[]; last: Msg }>();
  const now = new Date();
  for (const m of batch) {
    const mine = byPartition.get(m.partition) ?? { outputs: [], last: m };
    mine.last = m;
    byPartition.set(m.partition, mine);
    for (const d of decodeRecord(m.value, m.partition, m.offset)) {
      if (d.kind !== 'event') continue;
      const { event: e, partition, offset } = d.logged;
      if (e.type !== 'EntrantRegistered' || !e.replyTo) continue;
      const position = (placed.get(e.campaignId) ?? 0) + 1;
      placed.set(e.campaignId, position);
      const ticket = ticketOf(partition, offset);
      replies.push({ request: e.replyTo.request, ticket, position });
      if (e.campaignId === FLOOR_CAMPAIGNS.decide)
        mine.outputs.push(
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
  for (const [p, { outputs, last }] of byPartition) {
    if (outputs.length === 0) continue;
    let o = open.get(p);
    if (!o) open.set(p, (o = { outputs: [], last: null, lastCommit: 0, timer: null }));
    o.outputs.push(...outputs);
    o.last = last;
    const wait = o.lastCommit + config.WRITER_COMMIT_MS - Date.now();
    if (wait <= 0) commitNow(p);
    else o.timer ??= setTimeout(() => commitNow(p), wait);
  }
}

const stream = await consumer.consume({
  topics: [config.topics.events],
  mode: 'committed',
  fallbackMode: 'earliest',
  autocommit: false,
  isolationLevel: FetchIsolationLevels.READ_COMMITTED,
  maxWaitTime: config.WRITER_MAX_WAIT_MS,
  minBytes: 1,
});
stream.on('data', (m: Msg) => {
  turn.push(m);
  if (turn.length === 1) setImmediate(handle);
});
stream.on('error', (err: unknown) => log.error({ err }, 'floor reader failed'));
port.postMessage('ready');
