import { readLine } from './lineRead.js';
import type { CampaignTerms } from '../../src/domain/campaign.js';
import type { CampaignEvent } from '../../src/domain/events.js';
import { logger, type Logger } from '../../src/logger.js';
import type { CampaignLines, DueCode, LineAnswer, LineWork } from '../../src/writer/ports.js';
import { parsePlaces } from './answers.js';
import { giftValue, queueFact, wonValue } from './facts.js';
import type { RedisOrdering } from './reads.js';
import { RedisReplyChannel } from './replies.js';
import { RedisChangeFeed } from './changes.js';
import { finishRebuild, markBuilt, RedisWipeSignal, saveRebuildProgress, wipeUnderWay } from './rebuild.js';
import { SlotPipelines } from './slots.js';
import { removeCampaign } from './campaigns.js';
import { checkSteps, WriterSteps } from './steps.js';

/**
 * The single writer's view of the Redis ordering projection (its CampaignLines port). It counts its
 * own steps on each campaign (steps.ts) and checks them on every call: a campaign that lost writes
 * (a failover) is marked `building` and its partition unbuilt, so readers answer UNAVAILABLE, and
 * the writer rebuilds the partition from the log.
 */
export class RedisCampaignLines implements CampaignLines {
  private readonly steps = new WriterSteps();
  /** per partition, campaigns marked for repair: removed at the end of a rebuild that did not bring them back */
  private readonly repairing = new Map<number, Set<string>>();

  constructor(
    private readonly o: RedisOrdering,
    private readonly topic: string,
    private readonly log: Logger,
  ) {}

  async dueCodes(campaignId: string, stock: number): Promise<DueCode[]> {
    const k = this.o.keys;
    const [issued, loaded, placed] = await Promise.all([
      this.o.redis.hlen(k.gifts(campaignId)),
      this.o.redis.llen(k.codes(campaignId)),
      this.o.redis.zcard(k.line(campaignId)),
    ]);
    const end = Math.min(stock, loaded, placed);
    if (issued >= end) return [];
    const [users, codes] = await Promise.all([
      this.o.redis.zrange(k.line(campaignId), issued, end - 1),
      this.o.redis.lrange(k.codes(campaignId), issued, end - 1),
    ]);
    return users.flatMap((userId, i) => (codes[i] === undefined ? [] : [{ position: issued + i + 1, userId, sealed: codes[i]! }]));
  }

  /** Built, and (checked every 250 ms by the writer; `steps: false` skips it) no campaign it wrote lost writes. */
  async isBuilt(partition: number, steps = true): Promise<boolean> {
    if (!(await this.o.isBuilt({ topic: this.topic, partition }))) {
      this.steps.forget(partition);
      return false;
    }
    if (!steps) return true;
    const known = this.steps.known(partition);
    if (known.length === 0) return true;
    const pipes = new SlotPipelines(this.o.redis);
    for (const [id] of known) pipes.on(this.o.keys.meta(id)).hmget(this.o.keys.meta(id), 'seq', 'stock');
    const results = await pipes.exec();
    const behind: string[] = [];
    known.forEach(([id, seq], i) => {
      const [err, v] = results[i]!;
      if (err) throw err;
      const [now, stock] = v as (string | null)[];
      // a campaign with no stock was removed (cleanup of a closed one, a replay's wipe): place.lua tells if it is missing
      if (stock === null) this.steps.drop(partition, id);
      else if (Number(now ?? 0) < seq) behind.push(id);
    });
    if (behind.length === 0) return true;
    await this.repair(partition, behind);
    return false;
  }

  markBuilt(partition: number): Promise<void> {
    return markBuilt(this.o, { topic: this.topic, partition });
  }

  wipeUnderWay(partition: number): Promise<boolean> {
    return wipeUnderWay(this.o, { topic: this.topic, partition });
  }

  rebuildProgress(partition: number, next: bigint, until: bigint): Promise<void> {
    return saveRebuildProgress(this.o, { topic: this.topic, partition }, { next, until });
  }

  async finishRebuild(partition: number, created: Iterable<string>): Promise<boolean> {
    const ids = new Set(created);
    if (!(await finishRebuild(this.o, { topic: this.topic, partition }, ids))) return false;
    // repaired campaigns the bounded rebuild did not bring back (closed past retention): their reads go to the read model
    for (const id of this.repairing.get(partition) ?? []) if (!ids.has(id)) await removeCampaign(this.o, id);
    this.repairing.delete(partition);
    return true;
  }

  async terms(campaignIds: readonly string[]): Promise<Map<string, CampaignTerms>> {
    const metas = await Promise.all(campaignIds.map((id) => this.o.meta(id)));
    const out = new Map<string, CampaignTerms>();
    metas.forEach((m, i) => m && out.set(campaignIds[i]!, m.terms));
    return out;
  }

  /** One round trip (per node, on a cluster): the facts, then place.lua per campaign, every step checked against the writer's count. */
  async place(partition: number, work: LineWork): Promise<LineAnswer[][] | 'REBUILD'> {
    const k = this.o.keys;
    const pipes = new SlotPipelines(this.o.redis);
    // the count each step expects, as the steps queued before it in this pipeline will leave it
    const running = new Map<string, number | null>();
    const expect = (id: string) => {
      if (!running.has(id)) running.set(id, this.steps.of(partition, id));
      const e = running.get(id)!;
      return e === null ? '' : String(e);
    };
    const step = (id: string) => {
      const e = running.get(id);
      if (e !== null && e !== undefined) running.set(id, e + 1);
    };
    const counted: { index: number; campaignId: string }[] = [];
    for (const f of work.facts) {
      const id = f.event.campaignId;
      const index = pipes.length;
      if (queueFact(pipes.on, k, f.event, partition, f.replaying, expect(id))) {
        counted.push({ index, campaignId: id });
        step(id);
      }
    }
    for (const line of work.lines) {
      const id = line.campaignId;
      // one array, not spread: a rebuild's fetch holds tens of thousands of entries, more arguments than a call's stack takes
      if (line.replayed) pipes.on(k.meta(id)).fcReplayLine(k.meta(id), k.line(id), k.pending(id), expect(id), replayArgs(line.entries));
      else {
        const args: string[] = [];
        for (const e of line.entries) args.push(e.offset.toString(), e.userId, e.rejection ?? '');
        pipes.on(k.meta(id)).fcPlace(k.meta(id), k.line(id), k.pending(id), expect(id), args);
      }
      step(id);
    }
    const results = await pipes.exec();
    for (const [err] of results) if (err) throw err;
    const answers = counted.map(({ index, campaignId }) => ({ campaignId, seq: Number(results[index]![1]) }));
    const out: LineAnswer[][] = [];
    let rebuild = false;
    results.slice(results.length - work.lines.length).forEach(([, r], i) => {
      const places = parsePlaces(r as (string | number)[]);
      const campaignId = work.lines[i]!.campaignId;
      if (places === 'REBUILD') rebuild = true;
      else if (places === 'BEHIND') answers.push({ campaignId, seq: -1 });
      else {
        answers.push({ campaignId, seq: places.seq });
        out.push(places.answers);
      }
    });
    const behind = checkSteps(this.steps, partition, answers);
    if (behind.length > 0) {
      await this.repair(partition, behind);
      return 'REBUILD';
    }
    // a campaign gone (a flush, a replay's wipe): the rebuild counts anew
    if (rebuild) this.steps.forget(partition);
    else await this.publish(partition, answers);
    return rebuild ? 'REBUILD' : out;
  }

  async applyCommitted(partition: number, events: readonly CampaignEvent[]): Promise<boolean> {
    const pipes = new SlotPipelines(this.o.redis);
    const counted: { index: number; campaignId: string }[] = [];
    const touched = new Set<string>();
    // a commit's winners, one HSET per campaign and hash (not two commands per winner), before the
    // other facts: a campaign's CampaignSoldOut comes after its last winner, here as in the log
    const winners = new Map<string, { won: string[]; gifts: string[] }>();
    const facts: CampaignEvent[] = [];
    for (const e of events) {
      touched.add(e.campaignId);
      if (e.type !== 'WinnerSelected' && e.type !== 'GifticonIssued') {
        facts.push(e);
        continue;
      }
      let w = winners.get(e.campaignId);
      if (!w) winners.set(e.campaignId, (w = { won: [], gifts: [] }));
      if (e.type === 'WinnerSelected') w.won.push(e.userId, wonValue(e));
      else w.gifts.push(e.userId, giftValue(e));
    }
    const k = this.o.keys;
    for (const [id, { won, gifts }] of winners) {
      if (won.length > 0) pipes.on(k.won(id)).hset(k.won(id), ...won);
      if (gifts.length > 0) pipes.on(k.gifts(id)).hset(k.gifts(id), ...gifts);
    }
    for (const e of facts) {
      const index = pipes.length;
      const expected = this.steps.of(partition, e.campaignId);
      if (queueFact(pipes.on, k, e, partition, false, expected === null ? '' : String(expected)))
        counted.push({ index, campaignId: e.campaignId });
    }
    // decisions are plain writes: one counted step per campaign, last, so a lost tail that took one took it too
    const bumps: { index: number; campaignId: string }[] = [];
    for (const id of touched) {
      bumps.push({ index: pipes.length, campaignId: id });
      pipes.on(this.o.keys.meta(id)).fcBump(this.o.keys.meta(id), '');
    }
    try {
      const results = await pipes.exec();
      if (!results.every(([err]) => !err)) return false;
      const answers = [...counted, ...bumps]
        .sort((a, b) => a.index - b.index)
        .map(({ index, campaignId }) => ({ campaignId, seq: Number(results[index]![1]) }));
      const behind = checkSteps(this.steps, partition, answers);
      if (behind.length > 0) await this.repair(partition, behind);
      else await this.publish(partition, answers);
      return true;
    } catch (err) {
      this.log.warn({ err }, 'applying committed decisions to Redis failed');
      return false;
    }
  }

  /**
   * The counts, published in the partition's slot after the campaign's own writes: a reader that
   * finds a campaign below its count (RedisOrdering.campaign, entry) answers UNAVAILABLE. On Redis
   * Cluster the partition's slot is most likely on another node than the campaign's, so a failover
   * of the campaign's node leaves the count standing.
   */
  private async publish(partition: number, answers: readonly { campaignId: string }[]): Promise<void> {
    if (answers.length === 0) return;
    const ids = [...new Set(answers.map((a) => a.campaignId))];
    const fields = ids.flatMap((id) => {
      const seq = this.steps.of(partition, id);
      return seq === null ? [] : [id, String(seq)];
    });
    if (fields.length > 0) await this.o.redis.hset(this.o.keys.seqs(this.topic, partition), ...fields);
  }

  /** Campaigns that lost writes: readers wait (`building`), the partition is no longer built, and the writer's counts start over. */
  private async repair(partition: number, campaignIds: readonly string[]): Promise<void> {
    this.log.warn({ partition, campaigns: campaignIds }, 'Redis lost writes of these campaigns (a failover?): repairing them from the log');
    const set = this.repairing.get(partition) ?? new Set<string>();
    for (const id of campaignIds) set.add(id);
    this.repairing.set(partition, set);
    const pipes = new SlotPipelines(this.o.redis);
    for (const id of campaignIds) pipes.on(this.o.keys.meta(id)).fcRepair(this.o.keys.meta(id));
    for (const [err] of await pipes.exec()) if (err) throw err;
    // the counts go with the sentinel: the rebuild counts anew
    await this.o.redis.del(this.o.keys.built(this.topic, partition), this.o.keys.seqs(this.topic, partition));
    this.steps.forget(partition);
  }
}

/** replayLine.lua's arguments: the count of admitted entries, their offset-user pairs, then the users turned away. */
function replayArgs(entries: LineWork['lines'][number]['entries']): string[] {
  // one array, filled in place: spreading a rebuild's 2 × 10k-entry halves into a third was most of this
  const args: string[] = [''];
  let away: string[] | null = null;
  for (const e of entries) {
    if (e.rejection === null) args.push(e.offset.toString(), e.userId);
    else (away ??= []).push(e.userId);
  }
  args[0] = String((args.length - 1) / 2);
  if (away) for (const u of away) args.push(u);
  return args;
}

/** The single writer's two Redis ports over one client. */
export const writerPorts = (o: RedisOrdering, topic: string) => ({
  lines: new RedisCampaignLines(o, topic, logger.child({ role: 'writer', component: 'redis-lines' })),
  replies: new RedisReplyChannel(o),
  changes: new RedisChangeFeed(o, logger.child({ role: 'writer', component: 'change-feed' })),
  wipes: new RedisWipeSignal(o, topic),
  readLine: (campaignId: string) => readLine(o, campaignId),
});
