import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
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
 * At most `perSec` requests per second from one client address. A fixed one-second window: it
 * starts at the address's first request and ends a second later whatever came in between, so
 * nobody waits longer than the window (a limit that restarted its timer on every click would keep
 * an impatient person out for good).
 */
export function ipLimit(perSec: number, trust: Config['TRUST_PROXY']) {
  const limiter = new RateLimiterMemory({ points: perSec, duration: 1 });
  const addressOf = clientAddress(trust);
  /** 0 when the request may go on, else the milliseconds until its address may send again. */
  return async (req: IncomingMessage): Promise<number> => {
    try {
      await limiter.consume(addressOf(req));
      return 0;
    } catch (res) {
      if (res instanceof RateLimiterRes) return Math.max(1, res.msBeforeNext);
      throw res;
    }
  };
}
