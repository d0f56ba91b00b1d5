import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { z } from 'zod';

/**
 * The adapter to the gifticon provider's HTTP API, and the only place that knows its shape: a real
 * provider's API replaces this file. One call, one typed answer; nothing here retries, paces or
 * logs (src/issuer/client.ts does). A code never leaves this file except inside `issued`.
 *
 * `POST {url}/vouchers`, `Authorization: Bearer {token}`, `Idempotency-Key: {key}`, body
 * `{product, recipient, campaignId}`; 200/201 answers `{voucherId, code, expiresAt}`.
 */

export interface VoucherRequest {
  /** the same for every call about one winner's voucher, across retries and restarts */
  idempotencyKey: string;
  product: string;
  recipient: string;
  campaignId: string;
}

export interface Voucher {
  voucherId: string;
  code: string;
  expiresAt: string;
}

/** Why a call may be tried again with the same key. */
export type TransientReason =
  | 'timeout' // no answer in time: the voucher may have been issued, the same key gets it back
  | 'connection' // refused, reset, DNS
  | 'server' // 5xx
  | 'rate-limited' // 429
  | 'conflict' // 409: the same key is still being worked on
  | 'request-timeout' // 408
  | 'bad-answer'; // a 2xx whose body is not a voucher: the same key asks again

export type ProviderAnswer =
  | { kind: 'issued'; voucher: Voucher }
  | { kind: 'transient'; reason: TransientReason; status?: number; retryAfterMs?: number; detail: string }
  /** a 4xx other than 408, 409 and 429: asking again would get the same; `answer` is the provider's body, cut short */
  | { kind: 'permanent'; status: number; answer: string };

export interface ProviderAdapter {
  requestVoucher(req: VoucherRequest, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<ProviderAnswer>;
}

const VoucherBody = z.object({
  voucherId: z.string().min(1).max(200),
  code: z.string().min(1).max(200),
  expiresAt: z.string().datetime({ offset: true }),
});

const MAX_ANSWER = 1000;

/**
 * node:http(s) with a keep-alive agent rather than fetch: on this project's 2-core machines fetch
 * spent ~860 µs of CPU per small POST and node:http ~200-300 µs (bench/provider.ts's notes in
 * docs/benchmarks.md), and the issuer shares its process with the drop.
 */
export function httpProvider(opts: { url: string; token: string; maxSockets?: number }): ProviderAdapter {
  const endpoint = new URL('vouchers', opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  const https = endpoint.protocol === 'https:';
  const agent = new (https ? HttpsAgent : HttpAgent)({ keepAlive: true, maxSockets: opts.maxSockets ?? 256 });
  const send = https ? httpsRequest : httpRequest;
  return {
    requestVoucher(req, { timeoutMs, signal }) {
      signal?.throwIfAborted();
      const body = JSON.stringify({ product: req.product, recipient: req.recipient, campaignId: req.campaignId });
      return new Promise<ProviderAnswer>((resolve, reject) => {
        let settled = false;
        const settle = (fn: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          fn();
        };
        const out = send(
          endpoint,
          {
            method: 'POST',
            agent,
            headers: {
              authorization: `Bearer ${opts.token}`,
              'idempotency-key': req.idempotencyKey,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () => settle(() => resolve(classify(res.statusCode ?? 0, header(res.headers['retry-after']), text))));
            res.on('error', (err) => settle(() => resolve(connection(err))));
          },
        );
        const timer = setTimeout(
          () =>
            settle(() => (out.destroy(), resolve({ kind: 'transient', reason: 'timeout', detail: `no answer within ${timeoutMs} ms` }))),
          timeoutMs,
        );
        const onAbort = () => settle(() => (out.destroy(), reject(signal!.reason)));
        signal?.addEventListener('abort', onAbort, { once: true });
        out.on('error', (err) => settle(() => resolve(connection(err))));
        out.end(body);
      });
    },
  };
}

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? (v[0] ?? null) : (v ?? null));
const connection = (err: Error): ProviderAnswer => ({
  kind: 'transient',
  reason: 'connection',
  detail: (err as { code?: string }).code ?? err.message,
});

/** An HTTP answer as the client needs it; exported for the unit tests of the rules. */
export function classify(status: number, retryAfter: string | null, text: string, now = Date.now()): ProviderAnswer {
  if (status === 200 || status === 201) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const v = VoucherBody.safeParse(body);
    // the detail names what was wrong, never the body: it may hold a code
    if (!v.success)
      return {
        kind: 'transient',
        reason: 'bad-answer',
        status,
        detail: `not a voucher: ${v.error.issues.map((i) => i.path.join('.') || 'body').join(', ')}`,
      };
    return { kind: 'issued', voucher: { voucherId: v.data.voucherId, code: v.data.code, expiresAt: v.data.expiresAt } };
  }
  const after = retryAfterMs(retryAfter, now);
  const detail = `HTTP ${status}`;
  if (status === 429) return { kind: 'transient', reason: 'rate-limited', status, retryAfterMs: after, detail };
  if (status === 408) return { kind: 'transient', reason: 'request-timeout', status, retryAfterMs: after, detail };
  if (status === 409) return { kind: 'transient', reason: 'conflict', status, retryAfterMs: after, detail };
  if (status >= 400 && status < 500) return { kind: 'permanent', status, answer: text.slice(0, MAX_ANSWER) };
  // 5xx, and anything else a provider should not answer (1xx, 3xx, other 2xx)
  return { kind: 'transient', reason: 'server', status, retryAfterMs: after, detail };
}

/** `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!IMF_FIXDATE.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
