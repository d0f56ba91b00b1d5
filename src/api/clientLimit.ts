import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import proxyaddr from 'proxy-addr';
import type { Config } from '../config.js';

/** The client's address: the socket's, or from X-Forwarded-For through the hops TRUST_PROXY trusts. */
export function clientAddress(trust: Config['TRUST_PROXY']): (req: IncomingMessage) => string {
  if (trust === undefined) return (req) => req.socket.remoteAddress ?? 'unknown';
  // the same readings of `true` and a hop count as Express's `trust proxy`
  const trusted =
    trust === true ? () => true : typeof trust === 'number' ? (_addr: string, hop: number) => hop < trust : proxyaddr.compile(trust);
  return (req) => proxyaddr(req, trusted);
}

/**
 * At most `perSec` calls per second for one key (a client address, a user). A fixed one-second
 * window: it starts at the key's first call and ends a second later whatever came in between, so
 * nobody waits longer than the window (a limit that restarted its timer on every click would keep
 * an impatient person out for good).
 *
 * A window is a counter in an LRU of `keys` entries: an expired one is simply started again, and
 * nothing runs per key in the background. rate-limiter-flexible's RateLimiterMemory
 * sets a timer per new key to delete it: with fresh users on `enter`, a timer per request besides
 * its promise and result objects, ~8 µs of CPU a call against ~1.5 µs here (200,000 new keys in a
 * row, the timers' firing included). A key pushed out of the LRU starts a new window: only more
 * than `keys` distinct keys within a second could see that, and it loosens their limit, never
 * tightens it.
 */
export class FixedWindow {
  private readonly windows: LRUCache<string, { calls: number; endsAt: number }>;

  constructor(
    private readonly perSec: number,
    keys = 100_000,
  ) {
    this.windows = new LRUCache({ max: keys });
  }

  /** 0 when the call may go on, else the milliseconds until this key may call again. */
  take(key: string): number {
    const now = Date.now();
    const w = this.windows.get(key);
    if (w === undefined || w.endsAt <= now) {
      this.windows.set(key, { calls: 1, endsAt: now + 1000 });
      return 0;
    }
    return ++w.calls > this.perSec ? Math.max(1, w.endsAt - now) : 0;
  }
}

/** The per-address limit: the milliseconds until the request's address may send again, 0 when it may go on. */
export function ipLimit(perSec: number, trust: Config['TRUST_PROXY']): (req: IncomingMessage) => number {
  const limiter = new FixedWindow(perSec);
  const addressOf = clientAddress(trust);
  return (req) => limiter.take(addressOf(req));
}
