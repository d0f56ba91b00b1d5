import type { Consumer, EachBatchPayload, Kafka, Producer, Transaction } from 'kafkajs';
import type { Config } from '../config.js';
import { cryptoMinter, eventsForPlace, judgeEntry, type CampaignTerms, type Minter } from '../domain/campaign.js';
import { ticketOf, type CampaignEvent, type EntrantRegistered, type Logged } from '../domain/events.js';
import { headerString, keepConsuming, roleConsumer, toMessage } from '../infra/kafka/eventLog.js';
import { sortBatch, Stops, type Parking } from '../infra/kafka/parking.js';
import { RedisOrdering } from '../infra/redis/ordering.js';
import { unwatched, type HealthReporter } from '../health.js';
import { logger } from '../logger.js';
import type { Timing } from '../metrics.js';
import type { Reply } from './replies.js';

const log = logger.child({ role: 'decider' });

/**
 * The single writer of each partition. Per fetched batch: judge entries against the campaign's
 * terms, place them in Redis with one Lua call per campaign, mint gifticons for new winners and
 * append them in a Kafka transaction together with the input offsets. A zombie is fenced by the
 * transactional id, which is one per input partition (KafkaJS has no KIP-447).
 *
 * Redis is a projection: when it has been flushed the decider replays its partition from offset 0,
 * placing entries again (same offsets → same places) and re-applying the decisions already in the
 * log, and only then decides anew.
 */
export class Decider {
  private consumer: Consumer | null = null;
  private runner: ReturnType<typeof keepConsuming> | null = null;
  private readonly producers = new Map<number, Promise<Producer>>();
  /** partition → offset from which entries are decided anew; below it the log is only re-applied */
  private readonly replayUntil = new Map<number, bigint>();
  private readonly needsRebuild = new Set<number>();
  /** partitions sought back to 0 whose replay has not delivered its first batch yet */
  private readonly replayStarting = new Set<number>();
  /** campaigns met while rebuilding a partition, to mark complete at the end */
  private readonly rebuilt = new Map<number, Set<string>>();
  /** partition → the offset after the last batch whose decisions are committed (or re-applied) */
  private readonly committed = new Map<number, bigint>();
  /** partition → the commit in flight (true when it succeeded), at most one per partition */
  private readonly pending = new Map<number, Promise<boolean>>();
  /** partition → bumped when a failed commit or a rebuild sends the consumer back: batches of an older epoch are stale */
  private readonly epoch = new Map<number, number>();
  private readonly busy = new Set<number>();
  /** partition → the offset after batches that decided nothing and committed nothing yet */
  private readonly tail = new Map<number, bigint>();
  /**
   * Event ids of decisions this process committed and applied to Redis: when the consumer reads
   * them back they change nothing, and are skipped before parsing (a winner is two events: they
   * were a third of the decider's JSON parses and Redis writes). Bounded; cleared by a rebuild.
   */
  private readonly applied = new Set<string>();
  private assigned: number[] = [];
  private readonly terms = new Map<string, CampaignTerms>();
  private watch: NodeJS.Timeout | null = null;
  private assignedOnce!: Promise<void>;
  /** the check of the latest assignment: no batch is decided before it has settled its partitions */
  private settled: Promise<void> = Promise.resolve();
  private stopping = false;
  /** counters for /metrics */
  readonly stats = { batches: 0, entries: 0, winners: 0, rebuilds: 0 };
  /** partitions stopped at an event of a newer version */
  readonly stops = new Stops('decider', () => this.health);
  timing: Timing = () => undefined;
  /** told when batches or settling fail and when they work again (/readyz) */
  health: HealthReporter = unwatched;

  constructor(
    private readonly kafka: Kafka,
    private readonly ordering: RedisOrdering,
    private readonly config: Config,
    private readonly parking: Parking,
    private readonly mint: Minter = cryptoMinter,
  ) {}

  get topic() {
    return this.config.topics.events;
  }

  /** Partitions this member owns, once the group has assigned them. */
  get partitions(): readonly number[] {
    return this.assigned;
  }

  async start(): Promise<void> {
    let onAssigned!: () => void;
    this.assignedOnce = new Promise((r) => (onAssigned = r));
    this.runner = keepConsuming('decider', async (guard) => {
      // a decider must answer within milliseconds; KafkaJS's default waits 5 s on a quiet partition
      const consumer = roleConsumer(this.kafka, this.config.groups.decider, this.config.DECIDER_MAX_WAIT_MS);
      this.consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        this.assigned = (e.payload.memberAssignment[this.topic] ?? []).slice().sort((a, b) => a - b);
        this.stops.retain(this.assigned);
        this.settled = this.onAssigned();
        void this.settled.then(onAssigned, (err) => log.error({ err }, 'assignment check failed'));
      });
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.config.EVENT_PARTITIONS,
        eachBatch: guard((payload) => this.onBatch(payload)),
      });
      return consumer;
    }, { health: this.health });
    await this.runner.ready;
    this.watch = setInterval(() => {
      void this.checkBuilt().catch((err) => log.warn({ err }, 'built check failed'));
      this.commitTails();
    }, 250);
  }

  /** Resolves once the first assignment was checked (the consumer is ready to decide). */
  ready(): Promise<void> {
    return this.assignedOnce;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.watch) clearInterval(this.watch);
    await this.runner?.stop();
    await Promise.all(this.pending.values());
    await this.dropProducers();
  }

  /**
   * A partition's decisions start where its committed ones end, and that is known only once no
   * transaction of an earlier owner (a killed process, or this one before a failed commit) is in
   * doubt: see `settle`.
   */
  private async onAssigned(): Promise<void> {
    const assigned = this.assigned;
    // a commit of this process still in flight ends (or fails and settles) before the partition is settled again
    await Promise.all(this.pending.values());
    // every assignment fences anew: another member may have owned a partition in between
    await this.dropProducers();
    const offsets = await this.settle(assigned);
    for (const p of assigned) {
      const off = offsets.get(p) ?? 0n;
      this.committed.set(p, off);
      if (!(await this.ordering.isBuilt(this.topic, p))) {
        if (off === 0n) await this.markBuilt(p);
        else this.needsRebuild.add(p);
      }
    }
    log.info({ partitions: assigned }, 'decider assigned');
  }

  /**
   * Where the partition's committed decisions end, for certain. A commit that failed may have
   * landed all the same (the broker can die after writing the commit, before answering), and
   * deciding those entries again would mint a second gifticon. So the transactional id is
   * initialised anew first: the coordinator then completes a transaction that was prepared and
   * aborts one that was not, and fences its producer; only after that does the group's committed
   * offset tell the truth. Retried until the broker answers.
   */
  private async settle(partitions: number[]): Promise<Map<number, bigint>> {
    for (let attempt = 1; ; attempt++) {
      try {
        // the first transaction of a new producer sends InitProducerId; an empty one ends without a request
        await Promise.all(partitions.map(async (p) => (await (await this.producer(p)).transaction()).abort()));
        const admin = this.kafka.admin();
        await admin.connect();
        try {
          const [group] = await admin.fetchOffsets({ groupId: this.config.groups.decider, topics: [this.topic] });
          const offsets = new Map<number, bigint>();
          for (const c of group?.partitions ?? []) if (Number(c.offset) >= 0) offsets.set(c.partition, BigInt(c.offset));
          this.health.ok('settle');
          return offsets;
        } finally {
          await admin.disconnect();
        }
      } catch (err) {
        if (this.stopping) throw err;
        await Promise.all(partitions.map((p) => this.dropProducer(p)));
        this.health.failing(err, 'settle');
        log.warn({ err, partitions, attempt }, 'settling partitions failed: retrying');
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempt)));
      }
    }
  }

  /**
   * A partition gone quiet after batches that decided nothing: their offsets commit alone, so the
   * group's offset reaches the end of the log at rest (the reconcile job and lag readings rely on it).
   */
  private commitTails(): void {
    for (const [p, next] of this.tail) {
      if (!this.assigned.includes(p)) {
        this.tail.delete(p);
        continue;
      }
      if (this.busy.has(p) || this.replayUntil.has(p) || next <= (this.committed.get(p) ?? 0n)) continue;
      this.tail.delete(p);
      const previous = this.pending.get(p) ?? Promise.resolve(true);
      this.pending.set(p, previous.then((ok) => ok && this.commitAndApply(p, [], next)));
    }
  }

  /** Notices a flush between batches (an idle partition fetches nothing that would tell). */
  private async checkBuilt(): Promise<void> {
    for (const p of this.assigned) {
      if (this.busy.has(p) || this.replayUntil.has(p)) continue;
      if (this.needsRebuild.has(p) || !(await this.ordering.isBuilt(this.topic, p))) {
        if (this.busy.has(p)) continue;
        await this.beginRebuild(p);
      }
    }
  }

  /**
   * Replays the partition from offset 0 up to `until` (by default: where the committed decisions
   * end, once the commit in flight has settled; below it nothing is decided anew).
   */
  private async beginRebuild(partition: number, until?: bigint): Promise<void> {
    this.needsRebuild.delete(partition);
    await this.pending.get(partition);
    until ??= this.committed.get(partition) ?? 0n;
    if (until === 0n) {
      void this.markBuilt(partition);
      return;
    }
    this.stats.rebuilds++;
    log.warn({ partition, until: until.toString() }, 'Redis projection missing: replaying the partition from offset 0');
    this.replayUntil.set(partition, until);
    // a rebuild that starts over keeps the campaigns it met so far, to clear their `building` at the end
    if (!this.rebuilt.has(partition)) this.rebuilt.set(partition, new Set());
    this.terms.clear();
    this.applied.clear();
    this.tail.delete(partition);
    // a batch fetched before this point must neither commit nor end the rebuild: it did not replay
    // the partition from offset 0 (one that met only read-back decisions once ended it at once, and
    // the API, finding the partition built but the campaign gone, answered null: a wrong answer)
    this.epoch.set(partition, (this.epoch.get(partition) ?? 0) + 1);
    this.replayStarting.add(partition);
    this.consumer!.seek({ topic: this.topic, partition, offset: '0' });
  }

  private async markBuilt(partition: number): Promise<void> {
    await this.ordering.redis.set(this.ordering.keys.built(this.topic, partition), '1');
  }

  private async finishRebuild(partition: number): Promise<void> {
    const campaigns = this.rebuilt.get(partition) ?? new Set();
    const pipe = this.ordering.redis.pipeline();
    for (const id of campaigns) pipe.hdel(this.ordering.keys.meta(id), 'building');
    pipe.set(this.ordering.keys.built(this.topic, partition), '1');
    pipe.del(this.ordering.keys.rebuild(this.topic, partition));
    await pipe.exec();
    this.replayUntil.delete(partition);
    this.rebuilt.delete(partition);
    log.info({ partition, campaigns: campaigns.size }, 'Redis projection rebuilt from the log');
  }

  private producer(partition: number): Promise<Producer> {
    let p = this.producers.get(partition);
    if (!p) {
      const producer = this.kafka.producer({
        transactionalId: `${this.config.groups.decider}.${this.topic}.p${partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // The first send of a transaction meets CONCURRENT_TRANSACTIONS while the broker still writes
        // the previous commit's markers; KafkaJS's default first backoff (300 ms) made a transaction
        // take ~70 ms, a 5 ms one ~11 ms (bench: 60 transactions of 2 messages + offsets + commit).
        retry: { initialRetryTime: 5, retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 2000 },
      });
      p = producer.connect().then(() => producer);
      p.catch(() => this.producers.delete(partition));
      this.producers.set(partition, p);
    }
    return p;
  }

  private async dropProducers(): Promise<void> {
    await Promise.all([...this.producers.keys()].map((p) => this.dropProducer(p)));
  }

  private async dropProducer(partition: number): Promise<void> {
    const p = this.producers.get(partition);
    this.producers.delete(partition);
    await p?.then((producer) => producer.disconnect()).catch(() => undefined);
  }

  private async termsOf(campaignIds: Iterable<string>): Promise<void> {
    const missing = [...new Set(campaignIds)].filter((id) => !this.terms.has(id));
    if (missing.length === 0) return;
    const metas = await Promise.all(missing.map((id) => this.ordering.meta(id)));
    metas.forEach((m, i) => m && this.terms.set(missing[i]!, m.terms));
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const p = batch.partition;
    await this.settled;
    if (!isRunning() || isStale() || batch.messages.length === 0) return;
    if (this.needsRebuild.has(p) && !this.replayUntil.has(p)) {
      await this.beginRebuild(p);
      return;
    }
    const until = this.replayUntil.get(p);
    if (until !== undefined && this.replayStarting.has(p)) {
      // After the seek to 0 the first batch of the replay starts below `until`. One that does not
      // was fetched before the seek: deciding it now would place its entries in a line not yet
      // rebuilt (wrong ranks), and finishing the rebuild with it would show an empty line as built.
      if (BigInt(batch.firstOffset() ?? '0') >= until) return;
      this.replayStarting.delete(p);
    }
    const epoch = this.epoch.get(p) ?? 0;
    this.busy.add(p);
    try {
      // the writer never parks an entry it could decide: only records that are not events of this log
      const sorted = sortBatch('decider', this.topic, p, batch.messages, {
        skip: (m) => this.applied.size > 0 && this.applied.delete(headerString(m.headers, 'eventId') ?? ''),
        lastOffset: batch.lastOffset(),
      });
      if (sorted.stop) this.stops.stop(this.consumer, this.topic, sorted.stop);
      if (sorted.last === null) return;
      // parked before their offsets commit: a rerun parks them again under the same ids
      await this.parking.park(sorted.parked);
      const { logged } = sorted;
      const last = sorted.last;
      const started = performance.now();
      const outcome = await this.decideBatch(p, logged, last);
      this.timing('decide', (performance.now() - started) / 1000, logged.length);
      if (outcome === 'REBUILD') {
        await this.beginRebuild(p, this.replayUntil.get(p));
        return;
      }
      // Pipeline depth one: this batch's places were told while the previous batch committed; its
      // own commit waits for that one (one open transaction per producer, offsets in order).
      const previousCommitted = await (this.pending.get(p) ?? true);
      // sent back: to the last committed offset (a failed commit) or to offset 0 (a rebuild)
      if (!previousCommitted || (this.epoch.get(p) ?? 0) !== epoch || isStale()) return;
      if (outcome.outputs === null) this.committed.set(p, max(this.committed.get(p) ?? 0n, last + 1n));
      // a batch that decided nothing (read-backs, losers, rejections) needs no transaction: its
      // offsets commit with the next one that does, and a rerun of it would append nothing either
      else if (outcome.outputs.length > 0) {
        this.tail.delete(p);
        this.pending.set(p, this.commitAndApply(p, outcome.outputs, last + 1n));
      } else this.tail.set(p, last + 1n);
      resolveOffset(String(last));
      if (until !== undefined) {
        if (last + 1n >= until) await this.finishRebuild(p);
        else await this.ordering.redis.set(this.ordering.keys.rebuild(this.topic, p), JSON.stringify({ next: String(last + 1n), until: String(until) }));
      }
      await heartbeat();
    } finally {
      this.busy.delete(p);
    }
  }

  /** One fetched batch of one partition. */
  private async decideBatch(p: number, logged: Logged[], last: bigint): Promise<'REBUILD' | { outputs: CampaignEvent[] | null }> {
    // below `until` entries were decided before: by a committed transaction (whatever position the
    // consumer was handed), or, while rebuilding, by the log being replayed; they are only re-applied
    const until = max(this.replayUntil.get(p) ?? 0n, this.committed.get(p) ?? 0n);
    const replaying = (l: Logged) => l.offset < until;
    const { ordering } = this;
    const rebuilt = this.rebuilt.get(p);

    await this.termsOf(logged.filter((l) => l.event.type === 'EntrantRegistered').map((l) => l.event.campaignId));

    // 1. facts first (campaigns exist before their entries are placed), judging entries in log order
    const facts = ordering.redis.pipeline();
    const admitted = new Map<string, Logged<EntrantRegistered>[]>();
    const replies: { instance: string; reply: Reply }[] = [];
    for (const l of logged) {
      const e = l.event;
      rebuilt?.add(e.campaignId);
      if (e.type === 'EntrantRegistered') {
        const terms = this.terms.get(e.campaignId);
        if (!terms) {
          // unknown campaign: Redis lost it, or the entry names no campaign of this log
          if (!replaying(l) && !(await ordering.isBuilt(this.topic, p))) return 'REBUILD';
          continue;
        }
        const rejection = judgeEntry(terms, Date.parse(e.occurredAt));
        if (rejection) {
          facts.hdel(ordering.keys.pending(e.campaignId), e.userId);
          if (e.replyTo && !replaying(l)) replies.push({ instance: e.replyTo.instance, reply: { request: e.replyTo.request, campaignId: e.campaignId, userId: e.userId, kind: 'rejected', rejection } });
          continue;
        }
        // the first entry of a campaign is a fact for reports; one write per batch is enough
        if (!admitted.has(e.campaignId)) ordering.applyTo(facts, e, p, false);
        const list = admitted.get(e.campaignId) ?? [];
        list.push(l as Logged<EntrantRegistered>);
        admitted.set(e.campaignId, list);
        continue;
      }
      if (e.type === 'CampaignCreated' && !this.terms.has(e.campaignId)) {
        this.terms.set(e.campaignId, { stock: e.stock, opensAt: Date.parse(e.opensAt), closesAt: Date.parse(e.closesAt), closedAt: null });
      }
      if (e.type === 'CampaignClosed') {
        const t = this.terms.get(e.campaignId);
        if (t && t.closedAt === null) this.terms.set(e.campaignId, { ...t, closedAt: Date.parse(e.occurredAt) });
      }
      ordering.applyTo(facts, e, p, replaying(l));
    }
    // 2. places: one Lua call per campaign, in the same round trip as the facts
    const campaigns = [...admitted.keys()];
    for (const campaignId of campaigns) {
      ordering.queuePlace(facts, campaignId, admitted.get(campaignId)!.map((l) => ({ offset: l.offset, userId: l.event.userId })));
    }
    const results = (await facts.exec()) ?? [];
    const placeResults = results.slice(results.length - campaigns.length);
    for (const [err] of results) if (err) throw err;

    // new winners in normal mode get their events
    const outputs: CampaignEvent[] = [];
    const now = new Date();
    for (const [ci, campaignId] of campaigns.entries()) {
      const entries = admitted.get(campaignId)!;
      const places = RedisOrdering.parsePlaces(placeResults[ci]![1] as (string | number)[]);
      if (places === 'REBUILD') return 'REBUILD';
      const stock = this.terms.get(campaignId)!.stock;
      entries.forEach((l, i) => {
        const { rank, firstOffset } = places[i]!;
        if (replaying(l)) return;
        this.stats.entries++;
        const place = { position: rank + 1, ticket: ticketOf(p, firstOffset) };
        if (firstOffset === l.offset) outputs.push(...eventsForPlace(campaignId, stock, l.event.userId, place, now, this.mint));
        const r = l.event.replyTo;
        if (r) replies.push({ instance: r.instance, reply: { request: r.request, campaignId, userId: l.event.userId, kind: 'placed', ...place, stock } });
      });
    }

    // The places are a pure function of the committed entries' offsets, so the waiting callers may
    // hear them now; gifticon codes are random and reach them only after the commit (step 4). A
    // place told before the commit does not change when a crash makes the batch run again: the
    // same offsets give the same places. (Telling after the commit cost each call one transaction,
    // ~10-100 ms under load.)
    await this.tell(replies);

    this.stats.batches++;
    // replayed entries were decided before: only a batch that reaches past `until` commits
    return { outputs: last >= until ? outputs : null };
  }

  /**
   * 3. The decisions and the input offsets commit together, or not at all; 4. then, only committed
   * facts reach Redis (and through it the callers' gifticons). A failed commit sends the consumer
   * back to the last committed offset: the same entries are placed again in the same places, and
   * their gifticons minted anew (the aborted ones never existed).
   */
  private async commitAndApply(p: number, outputs: CampaignEvent[], nextOffset: bigint): Promise<boolean> {
    const committing = performance.now();
    try {
      await this.commit(p, outputs, nextOffset);
    } catch (err) {
      // Batches behind this one wait on it (it stays `pending`) and are dropped when it resolves false.
      log.error({ err, partition: p }, 'commit failed: settling the partition, then deciding again from its committed offset');
      // (a partition taken away meanwhile is settled by its new owner: settling it here would fence that one)
      const before = this.committed.get(p) ?? 0n;
      const from = this.assigned.includes(p) ? await this.settle([p]).then((o) => o.get(p) ?? 0n, () => before) : before;
      this.committed.set(p, max(this.committed.get(p) ?? 0n, from));
      this.epoch.set(p, (this.epoch.get(p) ?? 0) + 1);
      this.tail.delete(p);
      this.consumer?.seek({ topic: this.topic, partition: p, offset: String(this.committed.get(p)) });
      this.pending.delete(p);
      return false;
    }
    this.committed.set(p, nextOffset);
    this.timing('commit', (performance.now() - committing) / 1000, outputs.length);
    if (outputs.length > 0) {
      const after = this.ordering.redis.pipeline();
      for (const e of outputs) this.ordering.applyTo(after, e, p, false);
      // if Redis fails here the events are committed all the same, and applied when read back
      const ok = await after.exec().then(
        (results) => (results ?? []).every(([err]) => !err),
        (err) => (log.warn({ err }, 'applying committed decisions to Redis failed'), false),
      );
      if (ok) {
        if (this.applied.size > 100_000) this.applied.clear();
        for (const e of outputs) this.applied.add(e.eventId);
      }
      this.stats.winners += outputs.filter((e) => e.type === 'WinnerSelected').length;
    }
    return true;
  }

  /** Answers the API processes waiting for these decisions, one message per process. */
  private async tell(replies: { instance: string; reply: Reply }[]): Promise<void> {
    if (replies.length === 0) return;
    const byInstance = new Map<string, Reply[]>();
    for (const { instance, reply } of replies) byInstance.set(instance, [...(byInstance.get(instance) ?? []), reply]);
    const pipe = this.ordering.redis.pipeline();
    for (const [instance, rs] of byInstance) pipe.publish(this.ordering.keys.reply(instance), JSON.stringify(rs));
    await pipe.exec();
  }

  private async commit(p: number, outputs: CampaignEvent[], nextOffset: bigint): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const producer = await this.producer(p);
      let tx: Transaction | null = null;
      try {
        tx = await producer.transaction();
        if (outputs.length > 0) {
          await tx.send({ topic: this.topic, acks: -1, messages: outputs.map((e) => toMessage(e, this.config.EVENT_PARTITIONS)) });
        }
        await tx.sendOffsets({
          consumerGroupId: this.config.groups.decider,
          topics: [{ topic: this.topic, partitions: [{ partition: p, offset: nextOffset.toString() }] }],
        });
        await tx.commit();
        return;
      } catch (err) {
        await tx?.abort().catch(() => undefined);
        // KafkaJS does not retry CONCURRENT_TRANSACTIONS itself (FACTS.md)
        if ((err as { type?: string }).type === 'CONCURRENT_TRANSACTIONS' && attempt < 5) {
          await new Promise((r) => setTimeout(r, 50 * attempt));
          continue;
        }
        // a producer that lost its broker mid-transaction, or was fenced, is stuck (ABORTING): the
        // next one re-initialises the transactional id (see `settle`)
        await this.dropProducer(p);
        throw err;
      }
    }
  }
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);
