import type { FairnessKey } from '../../src/domain/fairness/line.js';
import { pino } from 'pino';
import { cryptoMinter, placeInLine, type CampaignTerms } from '../../src/domain/campaign.js';
import { EVENT_VERSION, storedCodeOf, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import { memoryCodes } from './codes.js';
import { keepCodes } from '../../src/domain/inventory.js';
import type { ParkedRecord } from '../../src/infra/kafka/parking.js';
import { PartitionWriter, type WriterShared } from '../../src/writer/partitionWriter.js';
import type {
  BatchControl,
  CampaignLines,
  DueCode,
  DecisionSink,
  FetchedBatch,
  LineAnswer,
  LineWork,
  RebuildBound,
  ReplyChannel,
} from '../../src/writer/ports.js';
import type { Reply } from '../../src/writer/replies.js';

/**
 * In-memory twins of the single writer's ports: a partitioned log with transactions and a group's
 * committed positions, the Redis lines, the reply channel. Faults are injected on the sink.
 */

export class MemoryLog {
  readonly records = new Map<number, Logged[]>();
  readonly committed = new Map<number, bigint>();

  append(partition: number, event: CampaignEvent): Logged {
    const list = this.records.get(partition) ?? [];
    const l = { event, partition, offset: BigInt(list.length) };
    list.push(l);
    this.records.set(partition, list);
    return l;
  }

  end(partition: number): bigint {
    return BigInt(this.records.get(partition)?.length ?? 0);
  }

  events(partition: number): CampaignEvent[] {
    return (this.records.get(partition) ?? []).map((l) => l.event);
  }

  /** the batch a consumer at `from` would fetch (at most `max` records) */
  batch(partition: number, from: bigint, max = 1000): FetchedBatch {
    const slice = (this.records.get(partition) ?? []).filter((l) => l.offset >= from).slice(0, max);
    return {
      partition,
      first: slice[0]?.offset ?? from,
      size: slice.length,
      read: (skip, range) => {
        const part = slice.slice(range.from, range.to);
        return {
          logged: skip ? part.filter((l) => !skip(l.event.eventId)) : part,
          parked: [] as ParkedRecord[],
          stop: null,
          last: part.at(-1)?.offset ?? null,
        };
      },
    };
  }
}

export type SinkFault = 'landed-then-throw' | 'throw-open' | null;

export class MemorySink implements DecisionSink {
  /** the fault the next commit meets, then none */
  fault: SinkFault = null;
  /** held commits: a commit waits while this is set */
  gate: Promise<void> | null = null;
  readonly calls = { commit: 0, settle: 0, reset: 0 };

  constructor(private readonly log: MemoryLog) {}

  async commit(partition: number, outputs: readonly CampaignEvent[], nextOffset: bigint): Promise<void> {
    this.calls.commit++;
    if (this.gate) await this.gate;
    const fault = this.fault;
    this.fault = null;
    if (fault === 'throw-open') throw new Error('injected: the transaction failed before its commit');
    for (const e of outputs) this.log.append(partition, e);
    this.log.committed.set(partition, nextOffset);
    if (fault === 'landed-then-throw') throw new Error('injected: the commit landed, its answer was lost');
  }

  async settle(partitions: readonly number[]): Promise<Map<number, bigint>> {
    this.calls.settle++;
    return new Map(partitions.filter((p) => this.log.committed.has(p)).map((p) => [p, this.log.committed.get(p)!]));
  }

  async reset(): Promise<void> {
    this.calls.reset++;
  }
}

/** place.lua (the domain's `placeInLine`) and the meta facts, in memory: the line keeps each user's first offset. */
export class MemoryLines implements CampaignLines {
  readonly built = new Set<number>();
  readonly metas = new Map<string, { terms: CampaignTerms; building: boolean }>();
  readonly lines = new Map<string, Map<string, bigint>>();
  readonly won = new Map<string, Set<string>>();
  readonly gifts = new Map<string, Map<string, string>>();
  /** INVENTORY: codes kept in load order, their hashes, and the chunks applied (loadCodes.lua) */
  readonly codes = new Map<string, { kept: string[]; seen: Set<string>; chunks: Set<string> }>();
  progress: { next: bigint; until: bigint } | null = null;

  /** FLUSHALL */
  flush(): void {
    this.built.clear();
    this.metas.clear();
    this.lines.clear();
    this.won.clear();
    this.gifts.clear();
    this.codes.clear();
  }

  async isBuilt(p: number) {
    return this.built.has(p);
  }
  async markBuilt(p: number) {
    this.built.add(p);
  }
  /** partitions a replay job is wiping */
  readonly wiping = new Set<number>();
  async wipeUnderWay(p: number) {
    return this.wiping.has(p);
  }
  async rebuildProgress(_p: number, next: bigint, until: bigint) {
    this.progress = { next, until };
  }
  async finishRebuild(p: number, created: Iterable<string>) {
    const ids = [...created];
    if (ids.some((id) => !this.metas.has(id))) return false;
    for (const id of ids) this.metas.get(id)!.building = false;
    this.built.add(p);
    this.progress = null;
    return true;
  }
  /** the line by rank, as projections/redis-ordering/lineRead.ts reads it */
  readLine(campaignId: string): { userId: string; offset: bigint }[] {
    return [...(this.lines.get(campaignId) ?? new Map<string, bigint>())]
      .map(([userId, offset]) => ({ userId, offset }))
      .sort((a, b) => (a.offset < b.offset ? -1 : 1));
  }
  async terms(ids: readonly string[]) {
    return new Map(ids.flatMap((id) => (this.metas.has(id) ? [[id, this.metas.get(id)!.terms] as const] : [])));
  }
  async place(_p: number, work: LineWork): Promise<LineAnswer[][] | 'REBUILD'> {
    for (const f of work.facts) this.apply(f.event, f.replaying);
    const out: LineAnswer[][] = [];
    for (const { campaignId, entries, replayed } of work.lines) {
      if (!this.metas.has(campaignId)) return 'REBUILD';
      const line = this.lines.get(campaignId) ?? new Map<string, bigint>();
      this.lines.set(campaignId, line);
      const answers = entries.map(({ offset, userId, rejection }): LineAnswer => {
        const d = placeInLine({ size: line.size, has: (u) => (line.get(u) ?? offset + 1n) <= offset }, userId, rejection);
        if (d.kind === 'rejected') return d;
        if (d.kind === 'new') line.set(userId, offset);
        const first = line.get(userId)!;
        return { kind: 'placed', rank: [...line.values()].filter((o) => o < first).length, firstOffset: first };
      });
      // as replayLine.lua: a replayed line's answers are not asked
      out.push(replayed ? [] : answers);
    }
    return out;
  }
  async applyCommitted(_p: number, events: readonly CampaignEvent[]) {
    for (const e of events) this.apply(e, false);
    return true;
  }
  async dueCodes(campaignId: string, stock: number) {
    const issued = this.gifts.get(campaignId)?.size ?? 0;
    const kept = this.codes.get(campaignId)?.kept ?? [];
    const line = this.readLine(campaignId);
    const end = Math.min(stock, kept.length, line.length);
    const out: DueCode[] = [];
    for (let i = issued; i < end; i++) out.push({ position: i + 1, userId: line[i]!.userId, sealed: kept[i]! });
    return out;
  }
  private apply(e: CampaignEvent, building: boolean) {
    if (e.type === 'CodesLoaded' && this.metas.has(e.campaignId)) {
      let c = this.codes.get(e.campaignId);
      if (!c) this.codes.set(e.campaignId, (c = { kept: [], seen: new Set(), chunks: new Set() }));
      if (!c.chunks.has(e.chunkId)) {
        c.chunks.add(e.chunkId);
        c.kept.push(...keepCodes(c.seen, e.codes).kept);
      }
    }
    if (e.type === 'CampaignCreated' && !this.metas.has(e.campaignId)) {
      this.metas.set(e.campaignId, {
        terms: {
          stock: e.stock,
          opensAt: Date.parse(e.opensAt),
          closesAt: Date.parse(e.closesAt),
          closedAt: null,
          ...(e.issuance && e.issuance !== 'MINTED' ? { issuance: e.issuance } : {}),
        },
        building,
      });
    }
    if (e.type === 'WinnerSelected') this.won.set(e.campaignId, (this.won.get(e.campaignId) ?? new Set()).add(e.userId));
    if (e.type === 'GifticonIssued')
      this.gifts.set(e.campaignId, (this.gifts.get(e.campaignId) ?? new Map()).set(e.userId, storedCodeOf(e)));
  }
}

/** The rebuild bound a test sets: where the oldest campaign Redis must hold begins. */
export class MemoryBound implements RebuildBound {
  start = 0n;
  readonly asked: { partition: number; until: bigint }[] = [];
  async startOf(partition: number, until: bigint) {
    this.asked.push({ partition, until });
    return this.start;
  }
}

export class MemoryReplies implements ReplyChannel {
  readonly told: Reply[] = [];
  async tell(replies: readonly { instance: string; reply: Reply }[]) {
    this.told.push(...replies.map((r) => r.reply));
  }
}

export interface Rig {
  log: MemoryLog;
  sink: MemorySink;
  lines: MemoryLines;
  bound: MemoryBound;
  replies: MemoryReplies;
  seeks: { partition: number; offset: bigint }[];
  shared: WriterShared;
  /** a writer of partition 0, settled as a new assignment would settle it */
  writer(): Promise<PartitionWriter>;
  /** the consumer's control of one batch, recording what the writer resolved */
  control(opts?: { stale?: () => boolean }): BatchControl & { resolved: bigint[] };
}

export function rig(opts: { fairness?: FairnessKey; headEveryMs?: number } = {}): Rig {
  const log = new MemoryLog();
  const sink = new MemorySink(log);
  const lines = new MemoryLines();
  const replies = new MemoryReplies();
  const bound = new MemoryBound();
  const seeks: { partition: number; offset: bigint }[] = [];
  const shared: WriterShared = {
    sink,
    lines,
    bound,
    replies,
    cursor: { seek: (partition, offset) => seeks.push({ partition, offset }) },
    parker: { park: async () => undefined },
    mint: cryptoMinter,
    codes: memoryCodes(),
    log: pino({ level: 'silent' }),
    timing: () => undefined,
    stats: { batches: 0, entries: 0, winners: 0, rebuilds: 0 },
    fairness: opts.fairness && { key: opts.fairness, readLine: async (c) => lines.readLine(c), everyMs: opts.headEveryMs },
  };
  return {
    log,
    sink,
    lines,
    bound,
    replies,
    seeks,
    shared,
    async writer() {
      const w = new PartitionWriter(0, shared);
      const offsets = await sink.settle([0]);
      await w.settle(offsets.get(0) ?? 0n);
      return w;
    },
    control(opts = {}) {
      const resolved: bigint[] = [];
      return {
        resolved,
        isStale: opts.stale ?? (() => false),
        resolve: (o) => void resolved.push(o),
        heartbeat: async () => undefined,
        stop: () => undefined,
      };
    },
  };
}

const at = '2026-11-29T12:00:00.000Z';
export const created = (campaignId: string, stock: number): CampaignEvent => ({
  type: 'CampaignCreated',
  version: EVENT_VERSION,
  eventId: `created:${campaignId}`,
  campaignId,
  occurredAt: at,
  title: campaignId,
  reward: 'r',
  stock,
  opensAt: '2026-11-29T00:00:00.000Z',
  closesAt: '2026-11-30T00:00:00.000Z',
});
export const entrant = (campaignId: string, userId: string, n = 0): CampaignEvent => ({
  type: 'EntrantRegistered',
  version: EVENT_VERSION,
  eventId: `entrant:${campaignId}:${userId}:${n}`,
  campaignId,
  occurredAt: at,
  userId,
  replyTo: { instance: 'api-1', request: `${userId}-${n}` },
});
export const closed = (campaignId: string): CampaignEvent => ({
  type: 'CampaignClosed',
  version: EVENT_VERSION,
  eventId: `closed:${campaignId}`,
  campaignId,
  occurredAt: at,
  reason: 'admin',
});
