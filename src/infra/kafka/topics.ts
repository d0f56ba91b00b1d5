import type { Admin } from 'kafkajs';
import type { Config } from '../../config.js';

/** Creates the topics this config needs, idempotently. The campaign-events topic is the store of record. */
export async function ensureTopics(
  admin: Admin,
  config: Pick<Config, 'topics' | 'EVENT_PARTITIONS'>,
): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const topic = config.topics.events;
  const brokers = (await admin.describeCluster()).brokers.length;
  const durable = [
    { name: 'retention.ms', value: '-1' },
    { name: 'retention.bytes', value: '-1' },
    { name: 'cleanup.policy', value: 'delete' },
    { name: 'min.insync.replicas', value: String(Math.min(2, brokers)) },
    { name: 'unclean.leader.election.enable', value: 'false' },
  ];
  if (!existing.has(config.topics.parked)) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: config.topics.parked, numPartitions: 1, replicationFactor: Math.min(3, brokers), configEntries: durable }],
    });
  }
  if (existing.has(topic)) {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    const have = meta.topics[0]?.partitions.length ?? 0;
    if (have !== config.EVENT_PARTITIONS) {
      throw new Error(
        `topic ${topic} has ${have} partitions, EVENT_PARTITIONS says ${config.EVENT_PARTITIONS}: ` +
          'a campaign is pinned to its partition, so the count cannot change under a running log',
      );
    }
    return;
  }
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: config.EVENT_PARTITIONS, replicationFactor: Math.min(3, brokers), configEntries: durable }],
  });
}
