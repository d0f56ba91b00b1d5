import type { Rejection } from '../domain/campaign.js';

/**
 * What the decider tells the API process that is waiting for a decision (Redis pub/sub on that
 * process's own channel). It is a signal only: the entry itself is read back from the projection,
 * so there is one way to build an Entry.
 */
export type Reply = { request: string; campaignId: string; userId: string } & (
  | { kind: 'placed' }
  | { kind: 'rejected'; rejection: Rejection }
);
