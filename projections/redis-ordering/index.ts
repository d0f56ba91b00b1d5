/** The Redis ordering projection: everything outside this folder reaches Redis through these. */
export { createRedis, isCluster, isRedisUnavailable, type RedisClient, type RedisTarget } from './client.js';
export { ChannelSubscriber } from './channels.js';
export { scanKeys } from './slots.js';
export { Keys } from './keys.js';
export type { GateAnswer } from './answers.js';
export {
  RedisOrdering,
  type InventoryView,
  type CampaignMeta,
  type CampaignView,
  type EntryView,
  type GiftView,
  type PartitionRef,
} from './reads.js';
export { EnterGate } from './gate.js';
export { CrowdReads } from './crowd.js';
export type { CrowdTurn } from './answers.js';
export { SocketLeases } from './sockets.js';
export { RedisCampaignLines, writerPorts } from './lines.js';
export { RedisReplyChannel, replyChannelOf } from './replies.js';
export { changesChannelOf, RedisChangeFeed } from './changes.js';
export * from './rebuild.js';
export * from './campaigns.js';
export { adoptSentinels, redisVerdict, sentinels, wipeProjection } from './identity.js';
