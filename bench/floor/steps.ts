/**
 * The rungs of bench/floor.ts, each an `enter` of the real HTTP edge and GraphQL resolver over a
 * stand-in write path, told apart by the campaign the mutation names:
 * - `graphql`: answered at once, no I/O (the edge, the token, the limiter, the resolver);
 * - `append`: the entry appended to the log (EventAppender: group commit, the configured codec),
 *   answered with its ticket once the broker acknowledged it;
 * - `read`: answered once a consumer of committed records read it back and placed it (a thread of
 *   its own, as the single writer's);
 * - `decide`: and each place is a winner's two events, committed with the input offset in one Kafka
 *   transaction by the single writer's own sink.
 */
export const FLOOR_STEPS = ['graphql', 'append', 'read', 'decide'] as const;
export type FloorStep = (typeof FLOOR_STEPS)[number];

export const FLOOR_CAMPAIGNS: Record<FloorStep, string> = {
  graphql: 'floor-graphql',
  append: 'floor-append',
  read: 'floor-read',
  decide: 'floor-decide',
};

export const stepOf = (campaignId: string): FloorStep | undefined => FLOOR_STEPS.find((s) => FLOOR_CAMPAIGNS[s] === campaignId);

/** What the reader thread tells the API thread of one entry. */
export interface FloorReply {
  request: string;
  ticket: string;
  position: number;
}

/** The Kafka clients the floor's log path can run on. */
export const FLOOR_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type FloorClient = (typeof FLOOR_CLIENTS)[number];

export function floorClientOf(v: string | undefined): FloorClient {
  const c = v ?? 'kafkajs';
  if (!(FLOOR_CLIENTS as readonly string[]).includes(c)) throw new Error(`unknown floor client ${c}: one of ${FLOOR_CLIENTS.join(', ')}`);
  return c as FloorClient;
}
