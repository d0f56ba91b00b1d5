import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.js';
import { logger } from '../logger.js';
import type { EdgeEvents } from '../metrics.js';
import type { RedisOrdering } from '../../projections/redis-ordering/index.js';
import { bearer } from './auth.js';
import { Budget } from './budgets.js';
import { clientAddress } from './clientLimit.js';

const log = logger.child({ component: 'edge' });

/**
 * Why the edge turned a request or a socket away, each counted under its own label
 * (`firstcome_edge_refused_total`) and logged at warn the first time only: a hostile crowd
 * repeats itself, and a log line per request would be its amplifier.
 */
export type EdgeCause =
  | 'bad-target' // a request target that is not a URL (`//[`)
  | 'bad-body' // a body that is not JSON
  | 'too-large' // a body over GRAPHQL_MAX_BODY_BYTES
  | 'client-error' // what node:http could not parse (bad request line, headers, encoding)
  | 'aborted' // a client that closed its connection mid-request
  | 'bad-upgrade' // a WebSocket upgrade the server cannot take
  | 'bad-frame' // a WebSocket frame that breaks the protocol
  | 'foreign-origin' // a WebSocket upgrade from an origin not allowed
  | 'sockets-per-address' // more sockets from one address than WS_MAX_SOCKETS_PER_ADDRESS
  | 'unauthorized-internals' // /metrics or /readyz's detail without METRICS_TOKEN
  | 'handler-fault'; // a fault of our own, caught at the edge

export function edgeFaults(events?: EdgeEvents) {
  const seen = new Set<EdgeCause>();
  return (cause: EdgeCause, detail?: unknown) => {
    events?.refused(cause);
    if (seen.has(cause)) return;
    seen.add(cause);
    // a fault of ours is worth its stack once; a client's bad input is worth a line
    if (cause === 'handler-fault')
      log.warn({ err: detail }, 'request failed at the edge (logged once; counted in firstcome_edge_refused_total)');
    else
      log.warn(
        { cause, detail: detail instanceof Error ? detail.message : detail },
        'request refused at the edge (logged once per cause; counted in firstcome_edge_refused_total)',
      );
  };
}
export type EdgeFault = ReturnType<typeof edgeFaults>;

/** The path of a request target, or null for one that is not a URL (never throws). */
export function pathOf(target: string | undefined): { pathname: string; search: string } | null {
  try {
    const url = new URL(target ?? '/', 'http://x');
    return { pathname: url.pathname, search: url.search };
  } catch {
    return null;
  }
}

/**
 * The budgets in front of GraphQL, kept in Redis and shared by every API process (0 turns one off):
 * - `ceiling`: every request from one address, before anything of it is parsed
 *   (RATE_LIMIT_IP_CEILING_PER_SEC, high: many people share an address behind carrier NAT);
 * - `anonymous`: requests from one address with no valid token, a bad token included
 *   (RATE_LIMIT_IP_PER_SEC): a flood of made-up tokens costs at most this many verifies;
 * - `user` / `admin`: the cost a signed-in identity (`sub`) may spend each second
 *   (RATE_LIMIT_USER_COST_PER_SEC, RATE_LIMIT_ADMIN_COST_PER_SEC): a request costs one, and a
 *   document parsed and validated anew costs one more per GRAPHQL_COST_BYTES of its text;
 * - `enter`: `enter` calls per user (ENTER_RATE_PER_SEC), answered RATE_LIMITED inside GraphQL.
 * With Redis lost, the edge budgets fall back to one of the same size in each process, and `enter`'s
 * refuses (UNAVAILABLE, as `enter` itself does without Redis).
 */
export function edgeBudgets(config: Config, ordering: RedisOrdering) {
  const make = (name: string, perSec: number, onLoss: 'local' | 'refuse', lease = 1) =>
    perSec > 0 ? new Budget(ordering.redis, ordering.keys.budget(name), perSec, onLoss, lease) : null;
  /** what parsing and validating `bytes` of a new document cost, in budget points */
  const parseCost = (bytes: number) => Math.floor(bytes / config.GRAPHQL_COST_BYTES);
  return {
    // one address behind a proxy sends many requests: the ceiling is leased from Redis in 2% shares
    ceiling: make(
      'ceiling',
      config.RATE_LIMIT_IP_CEILING_PER_SEC,
      'local',
      Math.max(1, Math.floor(config.RATE_LIMIT_IP_CEILING_PER_SEC / 50)),
    ),
    anonymous: make('anonymous', config.RATE_LIMIT_IP_PER_SEC, 'local'),
    user: make('user', config.RATE_LIMIT_USER_COST_PER_SEC, 'local'),
    admin: make('admin', config.RATE_LIMIT_ADMIN_COST_PER_SEC, 'local'),
    enter: make('enter', config.ENTER_RATE_PER_SEC, 'refuse'),
    addressOf: clientAddress(config.TRUST_PROXY),
    parseCost,
    /**
     * What a body of `bytes` pays ahead of its parse. Nothing below 2 × GRAPHQL_COST_BYTES: such a
     * parse costs less than the two Redis round trips of paying ahead and refunding (a fresh
     * `enter` made four budget calls instead of two), and a new document is charged afterwards.
     */
    payAhead: (bytes: number) => (parseCost(bytes) >= 2 ? parseCost(bytes) : 0),
  };
}
export type EdgeBudgets = ReturnType<typeof edgeBudgets>;

/** The address a request comes from: never throws (a header proxy-addr cannot read is the socket's). */
export function safeAddress(addressOf: (req: IncomingMessage) => string, req: IncomingMessage): string {
  try {
    return addressOf(req);
  } catch {
    return req.socket.remoteAddress ?? 'unknown';
  }
}

/**
 * A refusal held until the budget refills (at most a second): a flooder's connections wait instead
 * of coming straight back, so answering a flood costs a timer per request, not a core. At most
 * `maxHeld` wait at once; past that a refused request's connection is closed at once.
 */
export function tarpit(maxHeld = 10_000) {
  let held = 0;
  return {
    get held() {
      return held;
    },
    refuse(res: ServerResponse, waitMs: number, body: string) {
      res.setHeader('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))));
      res.setHeader('content-type', 'application/json');
      res.statusCode = 429;
      if (held >= maxHeld) {
        res.setHeader('connection', 'close');
        res.end(body);
        return;
      }
      held++;
      const timer = setTimeout(
        () => {
          held--;
          res.end(body);
        },
        Math.min(waitMs, 1000),
      );
      res.on('close', () => {
        if (!res.writableEnded) {
          clearTimeout(timer);
          held--;
        }
      });
    },
  };
}

/**
 * Addresses whose no-token budget a bad token has spent: their next tokens are refused here,
 * without a verify (an RS256 check, or a JWKS lookup for a made-up `kid`), until the window ends.
 */
export function badTokenBlocks() {
  const until = new Map<string, number>();
  return {
    blocked(address: string): number {
      const t = until.get(address);
      if (t === undefined) return 0;
      const left = t - Date.now();
      if (left > 0) return left;
      until.delete(address);
      return 0;
    },
    block(address: string, ms: number) {
      if (until.size > 10_000) for (const [a, t] of until) if (t <= Date.now()) until.delete(a);
      until.set(address, Date.now() + ms);
    },
  };
}

/** A bearer token equal to `secret`, compared in constant time. */
export function bearerMatches(header: string | undefined, secret: string): boolean {
  const a = Buffer.from(bearer(header) ?? '');
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Ends a raw socket (an upgrade the server will not take) with a status line and nothing else. */
export function endSocket(socket: Duplex, status: string) {
  if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  else socket.destroy();
}
