import type { ChannelSubscriber } from '../../../projections/redis-ordering/index.js';
import { logger } from '../../logger.js';
import type { ChangeNotice } from '../../writer/changeFeed.js';

const log = logger.child({ component: 'change-hub' });

type Listener = (notice: ChangeNotice) => void;

interface Watched {
  channel: string;
  /** resolves once Redis confirmed the SUBSCRIBE: a notice published after it cannot be missed */
  subscribed: Promise<unknown>;
  byUser: Map<string, Set<Listener>>;
  counters: Set<Listener>;
  /** counters: the last call and the one scheduled (at most one per `throttleMs`) */
  lastCall: number;
  scheduled: NodeJS.Timeout | null;
  latest: ChangeNotice | null;
}

/**
 * The process's one Redis subscription. A campaign's channel is subscribed while at least one
 * socket of this process watches that campaign, and every notice is handed to the watchers it
 * names: an entry's watchers when their user is in it, the counters' watchers at most once per
 * `throttleMs`. No watcher reads Redis unless a notice names it.
 */
export class ChangeHub {
  private readonly watched = new Map<string, Watched>();
  private readonly byChannel = new Map<string, string>();

  constructor(
    private readonly sub: ChannelSubscriber,
    /** the pub/sub channel of a campaign's changes (projections/redis-ordering) */
    private readonly channelOf: (campaignId: string) => string,
    private readonly throttleMs = 250,
  ) {
    sub.onMessage((channel, body) => {
      const id = this.byChannel.get(channel);
      const w = id === undefined ? undefined : this.watched.get(id);
      if (!w) return;
      let notice: ChangeNotice;
      try {
        notice = JSON.parse(body) as ChangeNotice;
      } catch (err) {
        return log.warn({ err, channel }, 'a notice that is not JSON');
      }
      // a signed head concerns every entrant it covers: each watcher reads its entry (and receipt) again
      if (notice.head) for (const set of w.byUser.values()) for (const fn of set) fn(notice);
      else for (const u of notice.users ?? []) for (const fn of w.byUser.get(u) ?? []) fn(notice);
      if (w.counters.size > 0) this.countersChanged(w, notice);
    });
    sub.onResubscribed(() => this.resync());
  }

  /** Calls `fn` on every notice that names the user's entry; resolves once no notice can be missed. */
  async watchEntry(campaignId: string, userId: string, fn: Listener): Promise<() => void> {
    const w = this.open(campaignId);
    const set = w.byUser.get(userId) ?? new Set<Listener>();
    set.add(fn);
    w.byUser.set(userId, set);
    const unwatch = () => {
      set.delete(fn);
      if (set.size === 0 && w.byUser.get(userId) === set) w.byUser.delete(userId);
      this.closeIfUnused(campaignId, w);
    };
    await this.subscribed(campaignId, w, unwatch);
    return unwatch;
  }

  /** Calls `fn` when the campaign changed, at most once per `throttleMs` (the last notice wins). */
  async watchCounters(campaignId: string, fn: Listener): Promise<() => void> {
    const w = this.open(campaignId);
    w.counters.add(fn);
    const unwatch = () => {
      w.counters.delete(fn);
      this.closeIfUnused(campaignId, w);
    };
    await this.subscribed(campaignId, w, unwatch);
    return unwatch;
  }

  /** channels subscribed and watchers, for /metrics and tests */
  get size() {
    let watchers = 0;
    for (const w of this.watched.values()) {
      watchers += w.counters.size;
      for (const s of w.byUser.values()) watchers += s.size;
    }
    return { channels: this.watched.size, watchers };
  }

  async close(): Promise<void> {
    for (const w of this.watched.values()) if (w.scheduled) clearTimeout(w.scheduled);
    this.watched.clear();
    await this.sub.quit();
  }

  /** A failed SUBSCRIBE takes the watch back, and the next watch of the campaign tries again. */
  private async subscribed(campaignId: string, w: Watched, unwatch: () => void): Promise<void> {
    try {
      await w.subscribed;
    } catch (err) {
      if (this.watched.get(campaignId) === w) {
        this.watched.delete(campaignId);
        this.byChannel.delete(w.channel);
      }
      unwatch();
      throw err;
    }
  }

  /**
   * After a reconnect (ioredis subscribes the channels again) notices of the outage are gone:
   * every watcher reads once more, so nobody waits for a change that was already made.
   */
  private resync(): void {
    const notice = (campaignId: string): ChangeNotice => ({ campaignId, users: [], at: Date.now() });
    for (const [id, w] of this.watched) {
      for (const set of w.byUser.values()) for (const fn of set) fn(notice(id));
      if (w.counters.size > 0) this.countersChanged(w, notice(id));
    }
  }

  private open(campaignId: string): Watched {
    let w = this.watched.get(campaignId);
    if (w) return w;
    const channel = this.channelOf(campaignId);
    const subscribed = this.sub.subscribe(channel);
    // a failed SUBSCRIBE fails the watch that awaits it; nothing else may see it unhandled
    subscribed.catch(() => undefined);
    w = { channel, subscribed, byUser: new Map(), counters: new Set(), lastCall: 0, scheduled: null, latest: null };
    this.watched.set(campaignId, w);
    this.byChannel.set(channel, campaignId);
    return w;
  }

  private closeIfUnused(campaignId: string, w: Watched): void {
    if (w.byUser.size > 0 || w.counters.size > 0 || this.watched.get(campaignId) !== w) return;
    if (w.scheduled) clearTimeout(w.scheduled);
    this.watched.delete(campaignId);
    this.byChannel.delete(w.channel);
    void this.sub.unsubscribe(w.channel).catch(() => undefined);
  }

  private countersChanged(w: Watched, notice: ChangeNotice): void {
    w.latest = notice;
    if (w.scheduled) return;
    const call = () => {
      w.scheduled = null;
      w.lastCall = Date.now();
      const n = w.latest!;
      w.latest = null;
      for (const fn of w.counters) fn(n);
    };
    const wait = w.lastCall + this.throttleMs - Date.now();
    if (wait <= 0) call();
    else w.scheduled = setTimeout(call, wait);
  }
}
