import type { Admin, Kafka } from 'kafkajs';
import { writeGenesis } from './genesis.js';
import type { Config } from '../../config.js';
import { replicationOf, servedByLeaders, settling } from './topicReady.js';

/**
 * Creates the topics this config needs, idempotently. The campaign-events topic is the store of
 * record; with `kafka`, the process that creates it writes its genesis records (genesis.ts).
 */
export async function ensureTopics(
  admin: Admin,
  config: Pick<Config, 'topics' | 'EVENT_PARTITIONS' | 'KAFKA_REPLICATION_FACTOR'>,
  kafka?: Kafka,
): Promise<void> {
  const existing = new Set(await settling(() => admin.listTopics()));
  const topic = config.topics.events;
  const replicas = await replicationOf(admin, config.KAFKA_REPLICATION_FACTOR);
  const durable = [
    { name: 'retention.ms', value: '-1' },
    { name: 'retention.bytes', value: '-1' },
    { name: 'cleanup.policy', value: 'delete' },
    { name: 'min.insync.replicas', value: String(Math.min(2, replicas)) },
    { name: 'unclean.leader.election.enable', value: 'false' },
  ];
  if (!existing.has(config.topics.parked)) {
    await settling(() =>
      admin.createTopics({
        waitForLeaders: false,
        topics: [{ topic: config.topics.parked, numPartitions: 1, replicationFactor: replicas, configEntries: durable }],
      }),
    );
    await servedByLeaders(admin, config.topics.parked);
  }
  if (existing.has(topic)) {
    const meta = await settling(() => admin.fetchTopicMetadata({ topics: [topic] }));
    const have = meta.topics[0]?.partitions.length ?? 0;
    if (have !== config.EVENT_PARTITIONS) {
      throw new Error(
        `topic ${topic} has ${have} partitions, EVENT_PARTITIONS says ${config.EVENT_PARTITIONS}: ` +
          'a campaign is pinned to its partition, so the count cannot change under a running log',
      );
    }
    return;
  }
  // KafkaJS's own wait for leaders gives up on the first "does not host" answer: servedByLeaders waits
  // false when another process created it meanwhile: that one writes the genesis
  const created = await settling(() =>
    admin.createTopics({
      waitForLeaders: false,
      topics: [{ topic, numPartitions: config.EVENT_PARTITIONS, replicationFactor: replicas, configEntries: durable }],
    }),
  );
  await servedByLeaders(admin, topic);
  if (created && kafka) await writeGenesis(kafka, topic, config.EVENT_PARTITIONS);
}
