import type { CampaignTerms } from '../domain/campaign.js';
import type { CampaignEvent } from '../domain/events.js';
import { decideBatch, type Outcome } from './decide.js';
import { LineHeads } from './lineHeads.js';
import type { BatchControl, FetchedBatch } from './ports.js';
import type { Mode, WriterShared } from './writerState.js';

export type { Mode, WriterShared } from './writerState.js';

export class PartitionWriter {
  mode: Mode = { kind: 'settling' };
  /** the offset after the last batch whose decisions are committed (or re-applied) */
  committed = 0n;
  /** the commit in flight (true when it succeeded): at most one, offsets in order */
  private inFlight: Promise<boolean> | null = null;
  /** decisions made and told, waiting for the next commit to start (see `gather`) */
  private gathered: { outputs: CampaignEvent[]; next: bigint; epoch: number; timer: NodeJS.Timeout } | null = null;
  private lastCommitAt = 0;
  /** bumped when a failed commit or a rebuild sends the consumer back: batches of an older epoch are stale */
  private epoch = 0;
  private busy = false;
  /** set when the partition was taken away: a failed commit is then left to its new owner */
  private retired = false;
  private starting: Promise<void> | null = null;
  private settled!: () => void;
  private readonly whenSettled = new Promise<void>((r) => (this.settled = r));
  /** the partition's campaign lines as Merkle trees, and the heads due (lineHeads.ts) */
  readonly heads: LineHeads | null;
  /**
   * INVENTORY campaigns of this partition: the winners issued a loaded code, by campaign, whose
   * GifticonIssued Redis may not show yet (a commit in flight). Cleared by this partition's rebuilds
   * and failed commits (what the aborted transaction issued never was), and by nothing else: one
   * partition's failure does not abort another's commit in flight (src/writer/inventory.ts).
   */
  readonly issuing = new Map<string, Set<string>>();
  /**
   * The terms of this partition's campaigns met so far. Cleared by this partition's rebuilds only:
   * cleared by another's, a batch deciding here found its campaign unknown between two steps.
   */
  readonly terms = new Map<string, CampaignTerms>();
  /**
   * Event ids of decisions this partition committed and applied to Redis: read back, they change
   * nothing and are skipped before parsing (a winner is two events: they were a third of the
   * writer's parses and Redis writes). Bounded; cleared by every rebuild of the partition.
   */
  private readonly applied = new Set<string>();

  constructor(
    readonly partition: number,
    readonly s: WriterShared,
  ) {
    this.heads = s.fairness ? new LineHeads(s.fairness.key, partition, s.fairness.readLine, s.fairness.everyMs) : null;
  }

  // ── transitions ────────────────────────────────────────────────────────────

  /** Settling → Deciding, or → RebuildDue when Redis does not hold the partition's projection. */
  async settle(committed: bigint): Promise<void> {
    this.committed = committed;
    if (await this.s.lines.isBuilt(this.partition)) this.mode = { kind: 'deciding', idleTail: null };
    else if (committed === 0n) {
      await this.s.lines.markBuilt(this.partition);
      this.mode = { kind: 'deciding', idleTail: null };
    } else this.mode = { kind: 'rebuild-due' };
    this.settled();
  }

  /** → Rebuilding: replays the partition from its bound up to `until` (default: where committed decisions end). */
  beginRebuild(until?: bigint, opts: { whole?: boolean } = {}): Promise<void> {
    // a batch and the timer may both find the projection gone: one rebuild starts
    this.starting ??= this.startRebuild(until, opts.whole ?? false).finally(() => (this.starting = null));
    return this.starting;
  }

  private async startRebuild(until: bigint | undefined, whole: boolean): Promise<void> {
    const previous = this.mode;
    // a rebuild that starts over keeps the campaigns it re-created so far, to clear their `building` at the end
    const created = ('created' in previous && previous.created) || new Set<string>();
    this.mode = { kind: 'rebuild-due', created };
    // Decisions told but not committed are dropped, and batches under way go stale: the replay
    // decides them again, in the same places. Committed while the rebuild starts, they would be
    // decided a second time past an `until` read before their commit ended.
    const dropped = this.dropGathered() !== null;
    this.epoch++;
    await this.inFlight;
    // A replay job wiping the partition's campaigns: a rebuild now would run again once the wipe
    // ends. It stays due; the 50 ms check (or the wipe's announcement) starts it once the wipe ends.
    if (await this.s.lines.wipeUnderWay(this.partition)) return;
    until ??= this.committed;
    if (until === 0n) {
      this.mode = { kind: 'deciding', idleTail: null };
      await this.s.lines.markBuilt(this.partition);
      if (dropped) this.s.cursor.seek(this.partition, 0n);
      return;
    }
    this.s.stats.rebuilds++;
    const asked = performance.now();
    const from = whole ? 0n : await this.rebuildStart(until);
    const boundMs = Math.round(performance.now() - asked);
    this.s.log.warn(
      { partition: this.partition, from: from.toString(), until: until.toString(), boundMs },
      'Redis projection missing: replaying the partition',
    );
    this.terms.clear();
    this.applied.clear();
    this.issuing.clear();
    this.heads?.clear();
    this.mode = { kind: 'rebuilding', from, until, seeking: true, seekAt: Date.now(), created };
    this.s.cursor.seek(this.partition, from);
  }

  /**
   * The bound, below `until`: the first batch after the seek must start below `until` to be told
   * from one fetched before the seek. 0 when the bound cannot be read.
   */
  private async rebuildStart(until: bigint): Promise<bigint> {
    const bound = await this.s.bound.startOf(this.partition, until).catch((err: unknown) => {
      this.s.log.warn({ err, partition: this.partition }, 'the rebuild bound could not be read: replaying the partition from offset 0');
      return 0n;
    });
    return bound < until ? bound : until - 1n;
  }

  /** Rebuilding → Deciding, or → Rebuilding again when a campaign it re-created was lost meanwhile (a flush, a replay's wipe). */
  private async finishRebuild(mode: Extract<Mode, { kind: 'rebuilding' }>): Promise<void> {
    if (!(await this.s.lines.finishRebuild(this.partition, mode.created))) {
      this.s.log.warn({ partition: this.partition }, 'a campaign was lost from Redis during the rebuild: rebuilding again');
      return this.beginRebuild();
    }
    this.mode = { kind: 'deciding', idleTail: null };
    this.s.log.info(
      { partition: this.partition, campaigns: mode.created.size, ms: Math.round(Date.now() - mode.seekAt) },
      'Redis projection rebuilt from the log',
    );
  }

  /** The partition was taken away: nothing more is committed or settled from here. */
  retire(): Promise<unknown> {
    // decisions already told commit as the one in flight does
    this.commitGathered();
    this.retired = true;
    // batches still waiting for the settle of this assignment end without reading
    this.settled();
    return this.inFlight ?? Promise.resolve();
  }

  /** The commit in flight, if any, has ended: true when it succeeded. */
  whenCommitted(): Promise<boolean> {
    return this.inFlight ?? Promise.resolve(true);
  }

  // ── timers ─────────────────────────────────────────────────────────────────

  /**
   * Every 50 ms: a flush or a replay's wipe between batches is noticed here (an idle partition
   * fetches nothing that would tell), from the sentinel alone but every 250 ms (`steps`), when the
   * writer's step counts are checked too (lost writes).
   */
  async checkBuilt(steps = true): Promise<void> {
    const m = this.mode;
    if (m.kind === 'rebuilding' && m.seeking && m.from > 0n && !this.busy && !this.retired && Date.now() - m.seekAt > SEEK_PATIENCE_MS) {
      this.s.log.warn(
        { partition: this.partition, from: m.from.toString() },
        'no batch came from the rebuild bound: replaying the partition from offset 0',
      );
      return this.beginRebuild(m.until, { whole: true });
    }
    const idle = () => !this.busy && !this.retired && (this.mode.kind === 'deciding' || this.mode.kind === 'rebuild-due');
    if (!idle()) return;
    if (this.mode.kind === 'rebuild-due' || !(await this.s.lines.isBuilt(this.partition, steps))) {
      if (idle()) await this.beginRebuild();
    }
  }

  /**
   * Every 250 ms: a partition gone quiet after batches that decided nothing commits their offsets
   * alone, so the group's offset reaches the end of the log at rest (reconcile and lag rely on it).
   */
  commitIdleTail(): void {
    const m = this.mode;
    if (m.kind === 'deciding' && !this.busy && !this.retired && !this.gathered && this.commitDueHeads(m)) return;
    if (m.kind !== 'deciding' || m.idleTail === null || this.busy || this.retired || m.idleTail <= this.committed) return;
    const next = m.idleTail;
    m.idleTail = null;
    const previous = this.inFlight ?? Promise.resolve(true);
    this.inFlight = previous.then((ok) => ok && this.commitAndApply([], next));
  }

  /**
   * A campaign's newest entrants that no head covers yet, a second after its last head, and no
   * batch coming to carry one: the heads commit on their own (with the idle tail's offsets, if any).
   */
  private commitDueHeads(m: Extract<Mode, { kind: 'deciding' }>): boolean {
    const due = this.heads?.due() ?? [];
    if (due.length === 0) return false;
    const tail = m.idleTail ?? 0n;
    m.idleTail = null;
    const previous = this.inFlight ?? Promise.resolve(true);
    this.inFlight = previous.then((ok) => ok && this.commitAndApply(due, max(this.committed, tail)));
    return true;
  }

  // ── a batch ────────────────────────────────────────────────────────────────

  async onBatch(batch: FetchedBatch, ctl: BatchControl): Promise<void> {
    await this.whenSettled;
    if (this.retired || ctl.isStale()) return;
    if (this.mode.kind === 'rebuild-due') return this.beginRebuild();
    const rebuild = this.mode.kind === 'rebuilding' ? this.mode : null;
    if (rebuild?.seeking) {
      // After the seek to 0 the first batch of the replay starts below `until`. One that does not
      // was fetched before the seek: deciding it now would place its entries in a line not yet
      // rebuilt (wrong ranks), and finishing the rebuild with it would show an empty line as built.
      if (batch.first >= rebuild.until) return;
      rebuild.seeking = false;
    }
    const epoch = this.epoch;
    this.busy = true;
    try {
      const started = performance.now();
      const read = await this.readAndDecide(batch, ctl, rebuild);
      if (read === null) return;
      const { last, outcome, events } = read;
      this.s.timing('decide', (performance.now() - started) / 1000, events);
      this.s.stats.batches++;
      if (outcome === 'REBUILD') return await this.beginRebuild(rebuild?.until);
      // Pipeline depth one: this batch's places were told while the previous batch committed; its
      // own commit waits for that one (one open transaction per producer, offsets in order).
      const previousCommitted = await (this.inFlight ?? true);
      // sent back: to the last committed offset (a failed commit) or to offset 0 (a rebuild)
      if (!previousCommitted || this.epoch !== epoch || ctl.isStale() || this.retired) return;
      if (outcome.outputs === null) this.committed = max(this.committed, last + 1n);
      else if (outcome.outputs.length > 0) {
        if (this.mode.kind === 'deciding') this.mode.idleTail = null;
        this.gather(outcome.outputs, last + 1n);
      } else if (this.gathered) this.gathered.next = last + 1n;
      else if (this.mode.kind === 'deciding') {
        // a batch that decided nothing (read-backs, losers, rejections) needs no transaction: its
        // offsets commit with the next one that does, and a rerun of it would append nothing either
        this.mode.idleTail = last + 1n;
      }
      ctl.resolve(last);
      if (rebuild) {
        if (last + 1n >= rebuild.until) await this.finishRebuild(rebuild);
        else await this.s.lines.rebuildProgress(this.partition, last + 1n, rebuild.until);
      }
      await ctl.heartbeat();
    } finally {
      this.busy = false;
    }
  }

  /**
   * Reads the batch and decides it; null when it holds nothing to move past. A rebuild's batch
   * (a fetch brings up to ~50k records) goes in slices of REBUILD_SLICE records, each read while
   * Redis places the slice before it: read whole and then placed whole, the process and Redis each
   * waited for the other. The slices are decided one after another, in log order, as batches are.
   */
  private async readAndDecide(
    batch: FetchedBatch,
    ctl: BatchControl,
    rebuild: Extract<Mode, { kind: 'rebuilding' }> | null,
  ): Promise<{ last: bigint; outcome: Outcome; events: number } | null> {
    // nothing applied (a rebuild clears the set): no record's ids need reading
    const skip = this.applied.size > 0 ? (id: string | undefined) => this.applied.size > 0 && this.applied.delete(id ?? '') : null;
    const step = rebuild ? REBUILD_SLICE : batch.size;
    let last: bigint | null = null;
    let events = 0;
    let deciding: Promise<Outcome> | null = null;
    let outputs: CampaignEvent[] | null = null;
    /** the slice being decided has ended: false when it found the projection gone */
    const decided = async () => {
      if (!deciding) return true;
      const o = await deciding;
      deciding = null;
      if (o === 'REBUILD') return false;
      if (o.outputs) (outputs ??= []).push(...o.outputs);
      return true;
    };
    for (let from = 0; from < batch.size; from += step) {
      // the writer never parks an entry it could decide: only records that are not events of this log
      const sorted = batch.read(skip, { from, to: Math.min(batch.size, from + step) });
      if (!(await decided())) return { last: last!, outcome: 'REBUILD', events };
      if (sorted.stop) ctl.stop(sorted.stop);
      if (sorted.last === null) break;
      // parked before their offsets commit: a rerun parks them again under the same ids
      await this.s.parker.park(sorted.parked);
      last = sorted.last;
      events += sorted.logged.length;
      deciding = decideBatch(this, sorted.logged, last, rebuild);
      // a failure is met by `decided`; meanwhile the next slice is read
      deciding.catch(() => undefined);
      if (sorted.stop) break;
    }
    if (!(await decided())) return { last: last!, outcome: 'REBUILD', events };
    return last === null ? null : { last, outcome: { outputs }, events };
  }

  /**
   * A batch's decisions commit at once, or, within `commitEveryMs` of the last commit's start, with
   * those of the batches after it in one later commit. While a transaction is open the partition's
   * last stable offset stays below its first decision, and no entry appended after that is read by
   * anyone (this writer included) until the commit marker: a commit per batch held the line up for
   * most of every cycle. Between commits, batches are fetched, placed and told at once. The places
   * told are a pure function of the entries' offsets, so they stand whether their commit lands or
   * is dropped (a failed commit or a rebuild sends the consumer back and they are decided again,
   * in the same places); codes reach no one before their commit.
   */
  private gather(outputs: CampaignEvent[], next: bigint): void {
    if (this.gathered) {
      this.gathered.outputs.push(...outputs);
      this.gathered.next = next;
      return;
    }
    const wait = this.lastCommitAt + (this.s.commitEveryMs ?? 0) - Date.now();
    if (wait <= 0) {
      this.lastCommitAt = Date.now();
      this.inFlight = this.commitAndApply(outputs, next);
      return;
    }
    this.gathered = { outputs: [...outputs], next, epoch: this.epoch, timer: setTimeout(() => this.commitGathered(), wait) };
  }

  /** Forgets the gathered decisions, whose commit has not started: them, if there were any. */
  private dropGathered(): PartitionWriter['gathered'] {
    const g = this.gathered;
    if (g) clearTimeout(g.timer);
    this.gathered = null;
    return g;
  }

  /** Starts the commit of the gathered decisions behind the one in flight, unless the consumer was sent back meanwhile. */
  private commitGathered(): void {
    const g = this.dropGathered();
    if (!g || g.epoch !== this.epoch) return;
    const previous = this.inFlight ?? Promise.resolve(true);
    this.inFlight = previous.then((ok) => {
      if (!ok || g.epoch !== this.epoch) return false;
      this.lastCommitAt = Date.now();
      return this.commitAndApply(g.outputs, g.next);
    });
  }

  /**
   * The decisions and the input offsets commit together, or not at all; then, only committed facts
   * reach Redis (and through it the callers' gifticons). A failed commit is settled (it may have
   * landed all the same: the broker can die after writing it, before answering), and the consumer
   * goes back to where committed decisions end: the same entries are placed again in the same
   * places, and their gifticons minted anew (an aborted transaction's codes never existed).
   */
  private async commitAndApply(outputs: CampaignEvent[], nextOffset: bigint): Promise<boolean> {
    const p = this.partition;
    const committing = performance.now();
    try {
      await this.s.sink.commit(p, outputs, nextOffset);
    } catch (err) {
      // Batches behind this one wait on it and are dropped when it resolves false.
      this.s.log.error({ err, partition: p }, 'commit failed: settling the partition, then deciding again from its committed offset');
      // a partition taken away meanwhile is settled by its new owner: settling it here would fence that one
      const before = this.committed;
      const from = this.retired
        ? before
        : await this.s.sink.settle([p]).then(
            (o) => o.get(p) ?? 0n,
            () => before,
          );
      this.committed = max(this.committed, from);
      this.issuing.clear();
      this.epoch++;
      if (this.mode.kind === 'deciding') this.mode.idleTail = null;
      if (!this.retired) this.s.cursor.seek(p, this.committed);
      this.inFlight = null;
      return false;
    }
    this.committed = nextOffset;
    this.s.timing('commit', (performance.now() - committing) / 1000, outputs.length);
    if (outputs.length > 0) {
      // if Redis fails here the events are committed all the same, and applied when read back
      if (await this.s.lines.applyCommitted(p, outputs)) {
        if (this.applied.size > 100_000) this.applied.clear();
        for (const e of outputs) this.applied.add(e.eventId);
      }
      this.s.stats.winners += outputs.filter((e) => e.type === 'WinnerSelected').length;
    }
    return true;
  }
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);

/**
 * Records of a rebuild's slice (readAndDecide). Reading one takes about as long as Redis takes to
 * place one; each slice costs a round trip more. At 5,000 a 48k-record fetch is ten slices.
 */
const REBUILD_SLICE = 5000;

/** how long a rebuild waits for the first batch from its bound (it comes within a fetch) before it replays the whole partition */
const SEEK_PATIENCE_MS = 5000;
