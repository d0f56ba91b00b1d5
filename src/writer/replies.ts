import type { Rejection } from '../domain/campaign.js';

/**
 * What the single writer tells the API process that is waiting for a decision (Redis pub/sub on that
 * process's own channel): the place, which is all the caller needs to answer (the gifticon is
 * issued by the commit that follows and shown by `myEntry`).
 */
export type Reply = { request: string; campaignId: string; userId: string } & (
  { kind: 'placed'; ticket: string; position: number; stock: number } | { kind: 'rejected'; rejection: Rejection }
);
