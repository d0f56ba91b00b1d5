import type { KafkaMessage } from 'kafkajs';
import type { CampaignEvent, Logged } from '../domain/events.js';
import type { HealthReporter } from '../health.js';

/** What a processor is given: the events of one partition from its checkpoint `from` up to `next`. */
export interface ProcessorBatch {
  partition: number;
  /** where the processor's checkpoint stood when the host read it or last moved it */
  from: bigint;
  /** where its checkpoint stands once this batch is handled (past filtered records too) */
  next: bigint;
  /** the events in [from, next) this processor can handle, in log order; may be empty (only the checkpoint moves) */
  events: readonly Logged[];
  /** the batch's raw records, for a processor that parks an event it cannot apply */
  messages: readonly KafkaMessage[];
  /**
   * For a processor that `signalsWriting`: called once it waits on its store for the batch's main
   * write. The host then lets the next batch be fetched and decoded meanwhile.
   */
  writing?: () => void;
}

/** `moved`: the checkpoint was not at `from` (a replay rewound it, another member wrote it); nothing was applied. */
export type Handled = { kind: 'handled' } | { kind: 'moved'; to: bigint };

/**
 * A read-side processor fed by the consumer host (as Emmett's processors are by its consumer):
 * it has a name, says which events it handles, keeps its own checkpoint per partition, and
 * handles one partition's batch at a time.
 */
export interface Processor {
  /** as in parked records and logs, e.g. `prisma-tables` */
  readonly name: string;
  /** told when its batches fail and when they work again (/readyz) */
  readonly health: HealthReporter;
  canHandle(event: CampaignEvent): boolean;
  /** the next offset to handle per partition, from the processor's own store (0 when it has none) */
  checkpoints(partitions: readonly number[]): Promise<Map<number, bigint>>;
  handle(batch: ProcessorBatch): Promise<Handled>;
  /** its checkpoints can move under it (a replay's rewind): the host re-reads them on idle partitions */
  readonly rewindable?: boolean;
  /** it calls each batch's `writing`: the host waits for that (or for the batch to be handled) before it fetches the next */
  readonly signalsWriting?: boolean;
  /** partitions handed to this process (or taken away): lag, caches */
  assigned?(partitions: readonly number[]): void;
  /** the host found its checkpoint moved (counted as a rewind) */
  moved?(partition: number, from: bigint, to: bigint): void;
  /** how far the log reaches on a partition, for lag */
  observe?(partition: number, at: { high?: string; next?: bigint }): void;
  /**
   * Tells the host of each rewind of its checkpoints as it happens, so the host reads them at once
   * instead of at its next check; resolves with the function that stops it. Best effort: the
   * host's checks go on.
   */
  watchRewinds?(heard: () => void): Promise<() => Promise<void>>;
}
