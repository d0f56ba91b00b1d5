import type { Minter } from '../domain/campaign.js';
import type { FairnessKey } from '../domain/fairness/line.js';
import type { Logger } from '../logger.js';
import type { Timing } from '../metrics.js';
import type { LineReader } from './lineHeads.js';
import type { CampaignLines, CodeSealing, DecisionSink, LogCursor, Parker, RebuildBound, ReplyChannel } from './ports.js';

/**
 * Where a partition's writer is. Each transition is one method below.
 *
 *   Settling ──settled──▶ Deciding ◀──────────────── finish ───┐
 *      │                    │  ▲                               │
 *      └─ not built ─▶ RebuildDue ──begin──▶ Rebuilding{until, seeking}
 *                           ▲  Deciding ──Redis lost──┘
 *
 * - Settling: the assignment's transactions in doubt are being fenced; batches wait.
 * - Deciding: entries past `committed` are decided; below it they were decided before (by a
 *   committed transaction, whatever position the consumer was handed) and are only re-applied.
 * - RebuildDue: Redis lost the partition's projection; the next batch or check starts a rebuild.
 * - Rebuilding: the partition is replayed from `from` up to `until` (where committed decisions
 *   end); nothing is decided anew below it. `from` is where the oldest campaign Redis must hold
 *   again begins (RebuildBound): campaigns created below it are closed past retention, and their
 *   facts are skipped (their entries are answered from Postgres). `seeking` until the first batch
 *   of the replay arrives: a batch fetched before the seek neither decides nor finishes the rebuild.
 *   A replay whose first batch does not come (the offsets from `from` to `until` held only
 *   transaction markers or aborted records, which no batch is handed) starts over from offset 0.
 */
export type Mode =
  | { kind: 'settling' }
  | { kind: 'deciding'; idleTail: bigint | null }
  /** `created`: the campaigns a rebuild re-created before it was put off (a wipe under way), to clear at its end */
  | { kind: 'rebuild-due'; created?: Set<string> }
  | { kind: 'rebuilding'; from: bigint; until: bigint; seeking: boolean; seekAt: number; created: Set<string> };

/** What every partition writer of a process shares. */
export interface WriterShared {
  sink: DecisionSink;
  lines: CampaignLines;
  /** where a rebuild may start instead of offset 0 */
  bound: RebuildBound;
  replies: ReplyChannel;
  cursor: LogCursor;
  parker: Parker;
  mint: Minter;
  /** seals the codes it mints under each campaign's data key (src/infra/codeKeys/vault.ts) */
  codes: CodeSealing;
  log: Logger;
  timing: Timing;
  stats: { batches: number; entries: number; winners: number; rebuilds: number };
  /** least time between the starts of two commits of a partition; 0: each batch commits at once (see `gather`) */
  commitEveryMs?: number;
  /** signed line heads (issue 31): off when left out */
  fairness?: { key: FairnessKey; readLine: LineReader; everyMs?: number };
}
