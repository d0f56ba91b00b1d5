import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { z } from 'zod';
import { DEV_PROVIDER_TOKEN } from '../config.js';
import { Ledger, type LedgerStats, type Seen, type Voucher } from './ledger.js';

/**
 * A gifticon provider on node:http, for the demo, the tests and the bench (`npm run provider:sim`).
 * `POST /vouchers` issues one voucher per `Idempotency-Key`, with the faults a real provider has,
 * each at its own rate: 5xx before issuing, a timeout after issuing (the voucher is stored, the
 * answer never comes), a permanent 4xx, and 429 with `Retry-After` beyond `rate` a second.
 * `GET /stats` tells what was issued; `POST /admin/faults` changes the faults while it runs (an
 * outage is `{"down": true}`).
 */

export interface Faults {
  /** median latency of an answer; each one is drawn log-normally around it */
  latencyMs: number;
  /** requests a second before 429 (a one-second window); 0: no limit */
  rate: number;
  /** share of requests answered 5xx, before anything is issued */
  errorRate: number;
  /** share of requests whose voucher is issued and whose answer never comes */
  timeoutRate: number;
  /** share of first requests of a key answered 422, nothing issued */
  permanentRate: number;
  /** every request answered 503 at once: the provider is down */
  down: boolean;
}

export const DEFAULT_FAULTS: Faults = { latencyMs: 200, rate: 500, errorRate: 0.05, timeoutRate: 0, permanentRate: 0.01, down: false };

/** The development token: `PROVIDER_TOKEN`'s default, so a local firstcome and the simulator agree. */
export const SIM_TOKEN = DEV_PROVIDER_TOKEN;

export interface SimOptions extends Partial<Faults> {
  port?: number;
  host?: string;
  token?: string;
  random?: () => number;
}

export interface ProviderSim {
  url: string;
  port: number;
  stats(): LedgerStats;
  /** every request one key made, in arrival order, with the status it was answered */
  history(key: string): Seen[];
  /** every voucher issued to a campaign's recipient, under any key (the demo compares each winner's code with it) */
  vouchersOf(campaignId: string, recipient: string): Voucher[];
  /** every key that reached the voucher endpoint, in the order each first came */
  keys(): string[];
  faults(): Faults;
  setFaults(change: Partial<Faults>): Faults;
  close(): Promise<void>;
}

const rate = z.number().min(0).max(1);
const FaultChange = z
  .object({
    latencyMs: z.number().int().min(0).max(60_000),
    rate: z.number().int().min(0),
    errorRate: rate,
    timeoutRate: rate,
    permanentRate: rate,
    down: z.boolean(),
  })
  .partial()
  .strict();

const Order = z.object({
  product: z.string().min(1).max(200),
  recipient: z.string().min(1).max(200),
  campaignId: z.string().min(1).max(200),
});
const KEY = /^[\x21-\x7e]{1,255}$/;
const MAX_BODY = 16 * 1024;
/** an answer held back (a timeout after issuing) is dropped after this, whether or not the client gave up */
const HOLD_MS = 120_000;

export async function startProviderSim(opts: SimOptions = {}): Promise<ProviderSim> {
  const token = opts.token ?? SIM_TOKEN;
  const random = opts.random ?? Math.random;
  const faults: Faults = { ...DEFAULT_FAULTS, ...pick(opts) };
  const ledger = new Ledger();
  let limiter = windowOf(faults.rate);
  const held = new Set<ServerResponse>();

  const setFaults = (change: Partial<Faults>): Faults => {
    const before = faults.rate;
    Object.assign(faults, FaultChange.parse(change));
    if (faults.rate !== before) limiter = windowOf(faults.rate);
    return { ...faults };
  };

  const latency = () => {
    if (faults.latencyMs === 0) return 0;
    // log-normal around the median (σ 0.5): most answers near it, a tail a few times longer
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    return Math.min(60_000, faults.latencyMs * Math.exp(0.5 * z));
  };

  async function vouchers(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawKey = req.headers['idempotency-key'];
    const key = typeof rawKey === 'string' && KEY.test(rawKey) ? rawKey : null;
    const seen = ledger.arrive(key);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      ledger.leave(seen, status);
      send(res, status, body, headers);
    };
    if (req.headers.authorization !== `Bearer ${token}`) return answer(401, { error: 'unauthorized' });
    const body = await readJson(req);
    const order = Order.safeParse(body);
    if (!order.success)
      return answer(400, { error: 'invalid_request', detail: order.error.issues.map((i) => i.path.join('.')).join(', ') });
    if (key === null) return answer(400, { error: 'invalid_request', detail: 'Idempotency-Key: 1 to 255 visible ASCII characters' });
    if (faults.down) return answer(503, { error: 'unavailable' });
    if (limiter) {
      const over = await limiter.consume('all').then(
        () => null,
        (r: unknown) => (r instanceof RateLimiterRes ? r : null),
      );
      if (over) {
        const seconds = Math.max(1, Math.ceil(over.msBeforeNext / 1000));
        seen.retryAfterMs = seconds * 1000;
        return answer(429, { error: 'rate_limited' }, { 'Retry-After': String(seconds) });
      }
    }
    if (!ledger.claim(key)) return answer(409, { error: 'request_in_progress' });
    try {
      const wait = latency();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const roll = random();
      if (roll < faults.errorRate) return answer(random() < 0.5 ? 500 : 503, { error: 'internal' });
      const had = ledger.voucherOf(key);
      if (!had && roll < faults.errorRate + faults.permanentRate) return answer(422, { error: 'recipient_not_eligible' });
      const { voucher, created } = ledger.issue(key, order.data);
      if (random() < faults.timeoutRate) {
        // issued, and the answer never comes: the connection stays open until the client gives up
        ledger.leave(seen, null);
        held.add(res);
        const drop = setTimeout(() => res.destroy(), HOLD_MS);
        res.on('close', () => (clearTimeout(drop), held.delete(res)));
        return;
      }
      answer(created ? 201 : 200, voucher);
    } finally {
      ledger.release(key);
    }
  }

  async function admin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { error: 'unauthorized' });
    const change = FaultChange.safeParse(await readJson(req));
    if (!change.success)
      return send(res, 400, { error: 'invalid_request', detail: change.error.issues.map((i) => i.path.join('.')).join(', ') });
    send(res, 200, setFaults(change.data));
  }

  const server: Server = createServer((req, res) => {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://sim').pathname;
    } catch {
      return send(res, 400, { error: 'bad_target' });
    }
    const route =
      req.method === 'POST' && path === '/vouchers'
        ? vouchers(req, res)
        : req.method === 'GET' && path === '/stats'
          ? Promise.resolve(send(res, 200, ledger.stats()))
          : req.method === 'POST' && path === '/admin/faults'
            ? admin(req, res)
            : req.method === 'GET' && path === '/admin/faults'
              ? Promise.resolve(send(res, 200, faults))
              : Promise.resolve(send(res, 404, { error: 'not_found' }));
    route.catch(() => {
      if (!res.headersSent) send(res, 400, { error: 'invalid_request' });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    stats: () => ledger.stats(),
    history: (key) => ledger.history(key),
    vouchersOf: (campaignId, recipient) => ledger.vouchersOf(campaignId, recipient),
    keys: () => ledger.keys(),
    faults: () => ({ ...faults }),
    setFaults,
    close: async () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function windowOf(perSec: number): RateLimiterMemory | null {
  return perSec > 0 ? new RateLimiterMemory({ points: perSec, duration: 1 }) : null;
}

function pick(o: SimOptions): Partial<Faults> {
  const out: Partial<Faults> = {};
  for (const k of Object.keys(DEFAULT_FAULTS) as (keyof Faults)[]) if (o[k] !== undefined) (out as Record<string, unknown>)[k] = o[k];
  return FaultChange.parse(out);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
