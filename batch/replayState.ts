import type { Admin, Kafka } from 'kafkajs';
import type { LogStamped } from './agenda.js';
import type { Config } from '../src/config.js';
import { partitionFor } from '../src/infra/kafka/partitioning.js';
import type { PrismaClient } from '../src/infra/prisma/client.js';
import type { RedisOrdering } from '../projections/redis-ordering/index.js';
import type { JobContext } from './runtime.js';
import type { WriterWatch } from './writers.js';

// What a replay job keeps in its data, what it works with, and what both of its targets share (./replay.ts).

export type ReplayTarget = 'REDIS' | 'DATABASE' | 'ALL';

/** What the job carries in `agenda_jobs.data`; its phases live there too, so it resumes after a crash. */
export interface ReplayData extends LogStamped {
  target: ReplayTarget;
  campaignId: string | null;
  redis?: RedisReplayState;
  database?: DatabaseReplayState;
  result?: ReplayResult;
  /** what it does and waits on now (JobContext.note) */
  note?: string;
}

export interface RedisReplayState {
  phase: 'deleting' | 'rebuilding' | 'done';
  partitions: number[];
  /** partition → high watermark at the start: what the rebuild replays, the weights of progress */
  ends: Record<string, string>;
  startedAt: number;
  finishedAt?: number;
  /** campaigns whose keys were deleted */
  campaigns?: number;
}

export interface DatabaseReplayState {
  phase: 'rewinding' | 'catching-up' | 'done';
  partitions: number[];
  ends: Record<string, string>;
  startedAt: number;
  finishedAt?: number;
}

export interface ReplayResult {
  target: ReplayData['target'];
  campaignId: string | null;
  /** per projection: events replayed (the affected partitions up to their end) and seconds taken */
  redis?: { events: number; seconds: number; partitions: number[]; campaigns: number };
  database?: { events: number; seconds: number; partitions: number[] };
}

/** sets the Prisma projection's checkpoint back (projections/prisma-tables: rewindPrismaProjection) */
export type RewindPrisma = (prisma: PrismaClient, topic: string, campaignId: string | null) => Promise<unknown>;

export interface ReplayDeps {
  config: Config;
  kafka: Kafka;
  ordering: RedisOrdering;
  prisma: PrismaClient;
  rewind: RewindPrisma;
}

/** How long a replay waits on a writer that shows no progress before it fails (and is retried). */
export const STALL_MS = 5 * 60_000;

export function affectedPartitions(campaignId: string | null, partitions: number): number[] {
  return campaignId === null ? Array.from({ length: partitions }, (_, p) => p) : [partitionFor(campaignId, partitions)];
}

/** Progress over partitions weighted by their number of records; an empty partition weighs one. */
export function weightedProgress(parts: { weight: bigint; fraction: number }[]): number {
  let total = 0;
  let done = 0;
  for (const { weight, fraction } of parts) {
    const w = Number(weight > 0n ? weight : 1n);
    total += w;
    done += w * Math.min(1, Math.max(0, fraction));
  }
  return total === 0 ? 1 : done / total;
}

/** What one target's replay works with: the job, its progress and notes, and a watch on the target's writer over the job's admin connection. */
export interface TargetRun {
  ctx: JobContext<ReplayData>;
  deps: ReplayDeps;
  data: ReplayData;
  progress: (f: number) => Promise<void>;
  note: (text: string) => void;
  watch: WriterWatch;
  admin: Admin;
}
