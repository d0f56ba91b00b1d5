import { setMaxListeners } from 'node:events';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Config } from '../config.js';
import { cryptoMinter, type Minter } from '../domain/campaign.js';
import { eventIds, issuanceParked, SEALED_GIFTICON_VERSION, type IssuanceParked, type SealedGifticonIssued } from '../domain/events.js';
import { unwatched, type HealthReporter } from '../health.js';
import type { CodeVault } from '../infra/codeKeys/vault.js';
import { namesNoEvent } from '../infra/kafka/codec.js';
import { keepConsuming, roleConsumer } from '../infra/kafka/consumer.js';
import type { LogIdentity } from '../infra/kafka/logIdentity.js';
import { sortBatch, Stops, type ParkedRecord, type Parking } from '../infra/kafka/parking.js';
import { readLog } from '../infra/kafka/reader.js';
import { logger } from '../logger.js';
import { KafkaDecisionSink } from '../writer/kafkaSink.js';
import type { IssueOutcome, ProviderClient } from './client.js';
import { idempotencyKey } from './keys.js';
import { IssuerLedger, type Want } from './ledger.js';

/** The consumer's name where it parks records and stops at newer events. */
export const ISSUER = 'issuer';

const log = logger.child({ role: 'issuer', component: ISSUER });

/**
 * Winners committed in one transaction. The next chunks are called for meanwhile, so a crash re-calls
 * the uncommitted ones (same keys, same vouchers).
 */
export const ISSUER_CHUNK = 200;

export interface IssuerStats {
  batches: number;
  issued: number;
  parked: number;
}

/**
 * The `issuer` role's consumer: for every WinnerSelected of a PROVIDER campaign (and every
 * IssuanceRequested of such a winner still without a gifticon: `retryParked`, the `issue` job), one voucher from
 * the provider, appended as a GifticonIssued (its code sealed under the campaign's data key) in the
 * same Kafka transaction as the input offsets past it. One transactional producer per input
 * partition (`<prefix>.issuer.<topic>.p<n>`) fences an issuer that lost its partition.
 *
 * Exactly one GifticonIssued per winner, across crashes: the calls of a chunk come first and its
 * events and offsets are committed together, so a crash before the commit re-runs the chunk's calls
 * with the same idempotency keys (`keys.ts`) and the provider hands back the vouchers it already
 * issued. On every assignment each partition is read from offset 0 into an `IssuerLedger` (the
 * campaigns' terms and the winners already issued), so a winner the log already holds a gifticon
 * for is never called for again.
 *
 * A permanent answer, or attempts or time run out, parks the winner's issuance in the dead-letter
 * topic with reason `provider` and the provider's answer, and appends an IssuanceParked in the same
 * transaction as the chunk's gifticons and offsets: the winner's FAILED is then a fact of the log,
 * which the projections fold like any other (the dead-letter topic is no part of their replay).
 */
export class Issuer {
  private runner: ReturnType<typeof keepConsuming> | null = null;
  private consumer: Consumer | null = null;
  private readonly sink: KafkaDecisionSink;
  private readonly ledgers = new Map<number, IssuerLedger>();
  /** the assignment being settled: batches wait for it */
  private assigning: Promise<void> = Promise.resolve();
  private assignedOnce!: Promise<void>;
  private readonly abort = new AbortController();
  readonly stats: IssuerStats = { batches: 0, issued: 0, parked: 0 };
  health: HealthReporter = unwatched;
  readonly stops = new Stops(ISSUER, () => this.health);

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Config,
    private readonly deps: {
      client: ProviderClient;
      vault: CodeVault;
      parking: Parking;
      logIdentity: LogIdentity;
      mint?: Minter;
      chunk?: number;
    },
  ) {
    // every call in flight listens on it (a chunk is hundreds)
    setMaxListeners(0, this.abort.signal);
    this.sink = new KafkaDecisionSink(kafka, config, log, () => this.health, config.groups.issuer);
  }

  private get topic() {
    return this.config.topics.events;
  }

  async start(): Promise<void> {
    let onAssigned!: () => void;
    this.assignedOnce = new Promise((r) => (onAssigned = r));
    this.runner = keepConsuming(
      ISSUER,
      async (guard) => {
        // a batch's winners are called for together: a fetch waits up to half a second for 64 kB, so
        // winners decided one by one still come in batches (issuance is not latency-bound; the
        // partition's next batch waits for this one, so one winner a batch would be one call at a time)
        const consumer = roleConsumer(this.kafka, this.config.groups.issuer, 500, { minBytes: 64 * 1024 });
        this.consumer = consumer;
        consumer.on(consumer.events.GROUP_JOIN, (e) => {
          const assigned = (e.payload.memberAssignment[this.topic] ?? []).slice().sort((a, b) => a - b);
          this.assigning = this.assign(assigned);
          void this.assigning.then(onAssigned, (err) => log.error({ err }, 'issuer assignment failed'));
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
      },
      { health: this.health },
    );
    await this.runner.ready;
  }

  /** Resolves once the first assignment was settled. */
  ready(): Promise<void> {
    return this.assignedOnce;
  }

  /** Transactions in doubt settled (fenced), then each partition's ledger folded from offset 0 to its end. */
  private async assign(partitions: number[]): Promise<void> {
    this.ledgers.clear();
    this.stops.retain(partitions);
    if (partitions.length === 0) return;
    await this.sink.reset();
    await this.sink.settle(partitions);
    const fresh = new Map(partitions.map((p) => [p, new IssuerLedger()]));
    await readLog(
      this.kafka,
      this.topic,
      (batch, { partition }) => {
        const ledger = fresh.get(partition)!;
        for (const l of batch) ledger.apply(l.event);
      },
      // the ledger folds no entry: on a drop's log they are nearly every record
      { partitions, skip: namesNoEvent },
    );
    for (const [p, l] of fresh) this.ledgers.set(p, l);
    log.info({ partitions }, 'issuer assigned');
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    await this.assigning;
    const p = batch.partition;
    const ledger = this.ledgers.get(p);
    if (!ledger || !isRunning() || isStale() || batch.messages.length === 0) return;
    // the issuer needs no entries, most of a drop's records: they are skipped unread (codec.ts)
    const sorted = sortBatch(ISSUER, this.topic, p, batch.messages, { lastOffset: batch.lastOffset(), skip: namesNoEvent });
    await this.deps.parking.park(sorted.parked);
    // heartbeats while the provider is called: a chunk at the provider's pace may take longer than the session
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 1000);
    try {
      const chunks = ledger.chunks(sorted.logged, this.deps.chunk ?? ISSUER_CHUNK);
      // Chunk by chunk, each chunk waited for its slowest call (a retry's backoff, a Retry-After)
      // while the provider's pace went unused: a drop was issued at a third of its rate. Now the next
      // chunks' calls start whenever fewer than `window` calls are unfinished, whatever the commits
      // wait on: two seconds of calls at the provider's rate, at least twice the client's slots. Not
      // the whole batch at once: a retry joins the client's queue at its end, and behind thousands of
      // first calls it would hold every commit until nearly all of them were made.
      const window = 2 * Math.max(this.config.PROVIDER_RATE_PER_SEC, this.config.PROVIDER_CONCURRENCY);
      const calls: Promise<IssueOutcome[]>[] = [];
      let unfinished = 0;
      const fill = () => {
        while (calls.length < chunks.length && unfinished < window && isRunning() && !isStale()) {
          const c = chunks[calls.length]!;
          unfinished += c.winners.length;
          const all = Promise.all(c.winners.map((w) => this.issueOne(w, ledger).finally(() => (unfinished--, fill()))));
          // a stale batch's calls run out unawaited: the next owner calls with the same keys, gets the same vouchers
          all.catch(() => undefined);
          calls.push(all);
        }
      };
      fill();
      for (const [i, chunk] of chunks.entries()) {
        // a chunk not called for: the batch went stale meanwhile
        if (!isRunning() || isStale() || !calls[i]) return;
        const last = i + 1 === chunks.length && sorted.last !== null ? sorted.last : chunk.lastOffset;
        // commits stay in offset order, one transaction a chunk
        await this.commitChunk(p, chunk.winners, await calls[i], last + 1n, ledger);
        resolveOffset(String(last));
      }
      if (chunks.length === 0 && sorted.last !== null) {
        await this.sink.commit(p, [], sorted.last + 1n);
        resolveOffset(String(sorted.last));
      }
    } finally {
      clearInterval(beat);
    }
    if (sorted.stop) this.stops.stop(this.consumer, this.topic, sorted.stop);
    this.stats.batches++;
    this.health.ok(p);
  }

  /** The chunk's vouchers (its calls' outcomes), then their events and the offset `next` in one transaction. */
  private async commitChunk(
    p: number,
    winners: readonly Want[],
    outcomes: IssueOutcome[],
    next: bigint,
    ledger: IssuerLedger,
  ): Promise<void> {
    const issued: SealedGifticonIssued[] = [];
    const parked: ParkedRecord[] = [];
    const failed: IssuanceParked[] = [];
    for (const [i, o] of outcomes.entries()) {
      const w = winners[i]!;
      if (o.kind === 'issued') issued.push(await this.gifticonOf(w, o.voucher));
      else {
        const record = this.parkedOf(p, w, o);
        parked.push(record);
        failed.push(issuanceParked(w, record.id, w.offset ?? '0'));
      }
    }
    // parked first: a crash between the two parks again (the same id), never loses one; the
    // IssuanceParked events go with the gifticons, so a crash before the commit appends neither
    await this.deps.parking.park(parked);
    await this.sink.commit(p, [...issued, ...failed], next);
    for (const e of issued) ledger.markIssued(e.campaignId, e.userId);
    for (const e of failed) ledger.markParked(e.campaignId, e.userId);
    this.stats.issued += issued.length;
    this.stats.parked += parked.length;
  }

  private issueOne(w: Want, ledger: IssuerLedger): Promise<IssueOutcome> {
    const product = ledger.termsOf(w.campaignId)?.product ?? '';
    return this.deps.client.issue(
      { idempotencyKey: idempotencyKey(this.deps.logIdentity, w.winnerEventId), product, recipient: w.userId, campaignId: w.campaignId },
      this.abort.signal,
    );
  }

  private async gifticonOf(w: Want, v: { voucherId: string; code: string; expiresAt: string }): Promise<SealedGifticonIssued> {
    return {
      type: 'GifticonIssued',
      version: SEALED_GIFTICON_VERSION,
      eventId: eventIds.gifticon(w.campaignId, w.userId),
      campaignId: w.campaignId,
      occurredAt: new Date().toISOString(),
      userId: w.userId,
      gifticonId: (this.deps.mint ?? cryptoMinter).id(),
      sealedCode: await this.deps.vault.seal(w.campaignId, v.code),
      position: w.position,
      voucherId: v.voucherId,
      expiresAt: new Date(v.expiresAt).toISOString(),
    };
  }

  /** The winner's issuance as a parked record: the winner (`Want`) as its raw value, and the provider's answer (never a code). */
  private parkedOf(p: number, w: Want, o: Exclude<IssueOutcome, { kind: 'issued' }>): ParkedRecord {
    const error =
      o.kind === 'permanent'
        ? `the provider refused: HTTP ${o.status} ${o.answer}`
        : `the provider did not issue within its ${o.why === 'attempts' ? 'attempts' : 'time budget'} (${o.attempts} calls, last: ${o.last})`;
    return {
      id: `${ISSUER}:${w.campaignId}:${w.position}`,
      consumer: ISSUER,
      reason: 'provider',
      error: error.replace(/\s+/g, ' ').slice(0, 500),
      topic: this.topic,
      partition: p,
      offset: w.offset ?? '0',
      key: w.campaignId,
      raw: Buffer.from(JSON.stringify(w)).toString('base64'),
      parkedAt: new Date().toISOString(),
    };
  }

  async stop(): Promise<void> {
    this.sink.stopping = true;
    this.abort.abort(new Error('the issuer is stopping'));
    await this.runner?.stop();
    await this.sink.reset();
  }
}
