import { BloomFilter } from 'bloomfilter';
import { judgeEntry, type CampaignTerms } from '../domain/campaign.js';
import type { ChangeNotice } from '../writer/changeFeed.js';
import { CrowdReads, type PartitionRef, type RedisOrdering } from '../../projections/redis-ordering/index.js';
import type { Metrics } from '../metrics.js';
import { logger } from '../logger.js';

const log = logger.child({ component: 'sold-out' });

/** The filter's rate of "maybe" for a user never seen: that share of a sold-out crowd still asks the gate. */
const MAYBE_RATE = 0.01;
/** Campaigns remembered at once; past it, a newly sold-out campaign is answered by the gate as before. */
const MOST_CAMPAIGNS = 1000;

/**
 * A campaign this process knows to be sold out. `learning`: subscribed to its change channel, its
 * entrants being read; `answering`: fresh users are answered here. `entrants` may say "maybe" for
 * a user never seen (a Bloom filter), never "no" for one that was.
 */
type Known =
  | { mode: 'learning'; campaignId: string; terms: CampaignTerms; where: PartitionRef; entrants: BloomFilter | null }
  | { mode: 'answering'; campaignId: string; terms: CampaignTerms; where: PartitionRef; entrants: BloomFilter; turn: Call[] };

interface Call {
  userId: string;
  at: number;
  done: (a: CrowdAnswer) => void;
}

/**
 * 'SOLD_OUT': answered here, counted; 'counted': counted, but the gate must answer it (the user may
 * be in line, or the campaign closed): ask it without counting again; null: nothing done here.
 */
export type CrowdAnswer = 'SOLD_OUT' | 'counted' | null;

/**
 * Answers the crowd of a sold-out campaign in this process. A campaign's stock cannot grow, so once
 * the gate said it is sold out it stays so: a user who is not in line can only be told SOLD_OUT
 * (CONTRACT.md: SOLD_OUT comes before the challenge too). Only a user who may be in line needs
 * Redis, to get their entry back.
 *
 * Who may be in line: every user pending or in line when this process read them (after subscribing
 * to the campaign's change channel), and every user announced there since, by mark.lua (a ticket
 * marked once the line is full) or by the writer (a user placed). Each turn of answers waits for a
 * PING on the subscription, so every announcement Redis made before the turn is in the filter
 * first: a user whose entry was marked before their click reached this process is never told
 * SOLD_OUT. The same turn makes one call (lua/crowdTurn.lua) that counts its calls in `requests`
 * and reads the campaign's close as it stands, so a closed campaign is answered CLOSED by the gate.
 *
 * A Bloom filter, not a set: a campaign's line can hold up to 10 million users, ~10 bits each here
 * (a JS Set of their ids would take hundreds of MB per campaign and process); a "maybe" costs the
 * gate's round trip, never a wrong answer. bloomfilter's test is ~0.25 µs here (bloom-filters 3.0.4
 * measured ~12 µs).
 */
export class SoldOutCrowd {
  readonly stats = { answered: 0, maybes: 0, learned: 0, abandoned: 0 };
  private readonly known = new Map<string, Known>();
  private readonly byChannel = new Map<string, string>();

  /** The process's crowd memory with its metrics; none on a Redis Cluster (CrowdReads.of). */
  static start(ordering: RedisOrdering, metrics: Pick<Metrics, 'counterFrom' | 'gauge'>): SoldOutCrowd | null {
    const reads = CrowdReads.of(ordering);
    if (!reads) return null;
    const c = new SoldOutCrowd(reads);
    metrics.counterFrom(
      'firstcome_enter_sold_out_in_process_total',
      "enter calls answered SOLD_OUT from this process's memory",
      () => c.stats.answered,
    );
    metrics.counterFrom(
      'firstcome_enter_sold_out_maybes_total',
      'calls of a sold-out campaign its memory sent to the gate (may be in line)',
      () => c.stats.maybes,
    );
    metrics.gauge('firstcome_enter_sold_out_campaigns', 'sold-out campaigns this process answers from memory', () => c.answering);
    return c;
  }

  constructor(private readonly reads: CrowdReads) {
    reads.subscriber.onMessage((channel, body) => this.heard(channel, body));
    // what was announced during the outage is lost: learn every campaign again
    reads.subscriber.onResubscribed(() => {
      for (const id of [...this.known.keys()]) this.forget(id);
    });
  }

  /** The campaigns answered here now (for /metrics). */
  get answering(): number {
    let n = 0;
    for (const k of this.known.values()) if (k.mode === 'answering') n++;
    return n;
  }

  /** Answers a call here if the campaign is known sold out; see CrowdAnswer. */
  answer(campaignId: string, userId: string, at: number): Promise<CrowdAnswer> | null {
    const k = this.known.get(campaignId);
    if (k?.mode !== 'answering') return null;
    // closed by its schedule: no longer a sold-out crowd, and nothing to remember
    if (judgeEntry(k.terms, at)) {
      this.forget(campaignId);
      return null;
    }
    return new Promise((done) => {
      k.turn.push({ userId, at, done });
      if (k.turn.length === 1) setImmediate(() => void this.runTurn(k));
    });
  }

  /** The gate said the campaign is sold out (every unit taken): learn its entrants, once. */
  learn(campaignId: string, terms: CampaignTerms, where: PartitionRef): void {
    if (this.known.has(campaignId) || this.known.size >= MOST_CAMPAIGNS) return;
    const k: Known = { mode: 'learning', campaignId, terms, where, entrants: null };
    this.known.set(campaignId, k);
    void this.read(k).catch((err: unknown) => {
      log.warn({ err, campaignId }, 'reading the entrants of a sold-out campaign failed');
      this.abandon(k);
    });
  }

  async close(): Promise<void> {
    for (const id of [...this.known.keys()]) this.forget(id);
    await this.reads.subscriber.quit();
  }

  private async read(k: Known): Promise<void> {
    const id = k.campaignId;
    // sized for the line as it is now and what may still join it; more would only say "maybe" more often
    const n = Math.ceil((await this.reads.lineSize(id)) * 1.1) + 1000;
    const bits = Math.ceil((-n * Math.log(MAYBE_RATE)) / Math.LN2 ** 2);
    const entrants = new BloomFilter(bits, Math.max(1, Math.round((bits / n) * Math.LN2)));
    k.entrants = entrants;
    const channel = this.reads.channel(id);
    this.byChannel.set(channel, id);
    await this.reads.subscriber.subscribe(channel);
    const read = await this.reads.entrants(id, k.where, (users) => users.forEach((u) => entrants.add(u)));
    if (this.known.get(id) !== k) return;
    if (read === 'moved') return this.abandon(k);
    this.known.set(id, { mode: 'answering', campaignId: id, terms: k.terms, where: k.where, entrants, turn: [] });
    this.stats.learned++;
  }

  private abandon(k: Known): void {
    this.stats.abandoned++;
    if (this.known.get(k.campaignId) === k) this.forget(k.campaignId);
  }

  private heard(channel: string, body: string): void {
    const id = this.byChannel.get(channel);
    const k = id === undefined ? undefined : this.known.get(id);
    if (!k?.entrants) return;
    let notice: ChangeNotice;
    try {
      notice = JSON.parse(body) as ChangeNotice;
    } catch (err) {
      // a notice this process cannot read may have named an entrant: stop answering from memory
      log.warn({ err, channel }, 'a notice that is not JSON');
      return this.forget(id!);
    }
    for (const u of notice.users ?? []) k.entrants.add(u);
  }

  private async runTurn(k: Extract<Known, { mode: 'answering' }>): Promise<void> {
    const calls = k.turn;
    k.turn = [];
    const settle = (a: CrowdAnswer) => calls.forEach((c) => c.done(a));
    const [turn, heard] = await Promise.allSettled([this.reads.turn(k.campaignId, calls.length, k.where), this.reads.barrier()]);
    if (turn.status === 'rejected') return settle(null);
    const t = turn.value;
    if (t.kind !== 'counted') {
      if (t.kind === 'gone') this.forget(k.campaignId);
      return settle(null);
    }
    // counted: whatever happens next, the gate must not count these calls again
    if (heard.status === 'rejected') return settle('counted');
    k.terms = { ...k.terms, closedAt: t.closedAt };
    for (const c of calls) {
      if (k.entrants.test(c.userId) || judgeEntry(k.terms, c.at)) {
        this.stats.maybes++;
        c.done('counted');
      } else {
        this.stats.answered++;
        c.done('SOLD_OUT');
      }
    }
  }

  private forget(campaignId: string): void {
    const k = this.known.get(campaignId);
    if (!k) return;
    this.known.delete(campaignId);
    if (k.mode === 'answering') k.turn.splice(0).forEach((c) => c.done(null));
    const channel = this.reads.channel(campaignId);
    this.byChannel.delete(channel);
    void this.reads.subscriber.unsubscribe(channel).catch(() => undefined);
  }
}
