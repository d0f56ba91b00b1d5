import type { CampaignTerms, Rejection, Sealer } from '../domain/campaign.js';
import type { CampaignEvent, Logged } from '../domain/events.js';
import type { NewerEventError } from '../infra/kafka/codec.js';
import type { ParkedRecord } from '../infra/kafka/parking.js';
import type { Reply } from './replies.js';

/**
 * What the single writer talks to. The real adapters are KafkaJS (`kafkaSink.ts`, the consumer in
 * `singleWriter.ts`) and ioredis (`projections/redis-ordering/lines.ts`); test/support/writerPorts.ts has in-memory twins,
 * so the writer's crash logic runs in unit specs without a server.
 */

/** Where decisions go: the log, in one transaction with the input offsets. */
export interface DecisionSink {
  /** Appends the decisions and commits `nextOffset` as the partition's input position, atomically. */
  commit(partition: number, outputs: readonly CampaignEvent[], nextOffset: bigint): Promise<void>;
  /**
   * Where the partitions' committed decisions end, for certain: first fences every earlier
   * transaction of them (completing a prepared one, aborting an open one), then reads the input
   * positions committed. Retries until the broker answers.
   */
  settle(partitions: readonly number[]): Promise<Map<number, bigint>>;
  /** Forgets the partitions' producers: the next commit or settle starts a new one (and fences the old). */
  reset(partitions?: readonly number[]): Promise<void>;
}

/** The campaigns' data keys, as the writer seals minted codes with them (src/infra/codeKeys/vault.ts's CodeVault). */
export interface CodeSealing {
  /** Loads the keys of these campaigns (made where none is yet); throws when one cannot be had. */
  prepare(campaignIds: Iterable<string>): Promise<void>;
  /** seals for the campaigns prepared */
  sealer: Sealer;
}

/** The consumer's position on the log. */
export interface LogCursor {
  seek(partition: number, offset: bigint): void;
}

/** One fetched batch of one partition. */
export interface FetchedBatch {
  partition: number;
  first: bigint;
  /** how many records it holds */
  size: number;
  /**
   * Sorts its records `from` up to `to` (positions in the batch; the last slice moves past what the
   * consumer filtered out after its records): each record at most once, and only records the writer reads.
   * `skip`: null when nothing is to be skipped (a rebuild's batches), so no record's ids are read for it.
   */
  read(skip: ((eventId: string | undefined) => boolean) | null, slice: { from: number; to: number }): SortedRecords;
}

export interface SortedRecords {
  logged: Logged[];
  parked: ParkedRecord[];
  stop: NewerEventError | null;
  /** the last offset the writer may move past; null when none */
  last: bigint | null;
}

/** What the consumer lets the writer do with the batch in hand. */
export interface BatchControl {
  /** the group moved on (a rebalance): nothing of this batch may be committed */
  isStale(): boolean;
  resolve(offset: bigint): void;
  heartbeat(): Promise<void>;
  /** pauses the partition at an event of a newer version */
  stop(err: NewerEventError): void;
}

/** The records the writer cannot use, parked before their offsets commit. */
export interface Parker {
  park(records: readonly ParkedRecord[]): Promise<void>;
}

/** The facts and entries of one batch, for the Redis ordering projection. */
export interface LineWork {
  /** facts in log order; `replaying` marks a re-application while the projection is rebuilt */
  facts: { event: CampaignEvent; replaying: boolean }[];
  /**
   * per campaign, its entries in log order, each with the terms' verdict at its point of the log
   * (`judgeEntry`): it applies only to a user not in line yet (`decideEntry`)
   */
  lines: {
    campaignId: string;
    entries: { offset: bigint; userId: string; rejection: Rejection | null }[];
    /** every entry was decided before (a rebuild re-applies it): the line is rebuilt, and its answers are not asked (an empty list comes back) */
    replayed?: boolean;
  }[];
}

/** What became of an entry in a campaign's line (`decideEntry`, done atomically by place.lua). */
export type LineAnswer =
  /** in line: the rank among distinct users (0-based) and the user's first offset (this entry's when it is new) */
  | { kind: 'placed'; rank: number; firstOffset: bigint }
  /** not in line, and turned away by the terms */
  | { kind: 'rejected'; rejection: Rejection };

/** A winner of an INVENTORY campaign and the code its position takes (the k-th loaded for position k). */
export interface DueCode {
  position: number;
  userId: string;
  sealed: string;
}

/** The Redis ordering projection, as the writer uses it. */
export interface CampaignLines {
  /**
   * the partition's projection is complete up to where the writer stands; `steps: false` reads its
   * sentinel alone (the writer's frequent check), without the check of the step counts
   */
  isBuilt(partition: number, steps?: boolean): Promise<boolean>;
  markBuilt(partition: number): Promise<void>;
  /** a replay job is wiping the partition's campaigns: the rebuild waits for the wipe to end, or it would run twice */
  wipeUnderWay(partition: number): Promise<boolean>;
  rebuildProgress(partition: number, next: bigint, until: bigint): Promise<void>;
  /**
   * The campaigns the rebuild re-created are complete again, and so is the partition; false (the
   * partition left unbuilt) when one of them was lost meanwhile: the rebuild starts over.
   */
  finishRebuild(partition: number, created: Iterable<string>): Promise<boolean>;
  terms(campaignIds: readonly string[]): Promise<Map<string, CampaignTerms>>;
  /** One round trip: the facts, then an answer for every entry, per line in `work.lines` order (none for a `replayed` line);
   * 'REBUILD' when a campaign's projection was gone (Redis flushed). */
  place(partition: number, work: LineWork): Promise<LineAnswer[][] | 'REBUILD'>;
  /**
   * An INVENTORY campaign's winners due a loaded code: from the first position without a gifticon
   * in Redis (issued codes are a prefix of the positions) up to the last position that both a winner
   * (within `stock`) and a loaded code hold; each with its user and the sealed code at that position.
   */
  dueCodes(campaignId: string, stock: number): Promise<DueCode[]>;
  /** Committed decisions onto the projection; false when Redis failed (they are applied when read back). */
  applyCommitted(partition: number, events: readonly CampaignEvent[]): Promise<boolean>;
}

/**
 * Where a rebuild of a partition may start: at or below the first offset of every campaign Redis
 * must hold again (open, or closed within REDIS_RETENTION_HOURS). What lies below it is only
 * campaigns Redis no longer needs; their entries are read from the Postgres read model. It is read
 * from stores that outlive a Redis loss; 0 (the whole partition) when it cannot tell.
 */
export interface RebuildBound {
  startOf(partition: number, until: bigint): Promise<bigint>;
}

/** Replay jobs' wipes of partitions, as they happen (the writer also reads each partition's sentinel every 50 ms). */
export interface WipeSignal {
  /** `wiped` is called with each partition of `partitions` a job wipes, until the returned stop */
  listen(partitions: readonly number[], wiped: (partition: number) => void): Promise<() => Promise<void>>;
}

/** The API processes waiting for decisions. */
export interface ReplyChannel {
  tell(replies: readonly { instance: string; reply: Reply }[]): Promise<void>;
}
