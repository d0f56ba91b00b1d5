import { createHash } from 'node:crypto';

/**
 * A campaign's stream is one partition, chosen by a stable hash of its id, so the API, the single
 * writer and the readers agree without asking the broker. The partition count is fixed at topic creation.
 */
export function partitionFor(campaignId: string, partitions: number): number {
  return createHash('sha1').update(campaignId).digest().readUInt32BE(0) % partitions;
}
