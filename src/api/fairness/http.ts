import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CAMPAIGN_ID } from '../guards.js';
import type { FairnessReader } from './reader.js';

export const WELL_KNOWN_FAIRNESS = '/.well-known/firstcome-fairness.json';

export const isFairnessPath = (pathname: string) => pathname === WELL_KNOWN_FAIRNESS || pathname.startsWith('/fairness/');

/**
 * The public proofs as plain JSON, no token: the keys, and a campaign's `fairness` object with every
 * leaf. Cacheable: a closed campaign's never changes (a day, immutable, with an ETag), an open
 * one's for a second.
 */
export async function serveFairness(pathname: string, req: IncomingMessage, res: ServerResponse, reader: FairnessReader): Promise<void> {
  if (pathname === WELL_KNOWN_FAIRNESS) return send(req, res, JSON.stringify(reader.keys()), 'public, max-age=3600');
  const id = decodeURIComponent(pathname.slice('/fairness/'.length));
  if (!CAMPAIGN_ID.test(id)) return plain(res, 400, '{"error":"a campaign id is [a-z0-9-]{1,64}"}');
  const kept = reader.closedBodies.get(id);
  if (kept) return send(req, res, kept.body, 'public, max-age=86400, immutable', kept.etag);
  const f = await reader.fairness(id);
  if (!f) return plain(res, 404, '{"error":"no such campaign"}');
  const body = JSON.stringify({
    campaignId: f.campaignId,
    stock: f.stock,
    heads: f.heads,
    finalHead: f.finalHead,
    leaves: f.allLeaves(),
    winners: f.winners,
  });
  if (!f.finalHead) return send(req, res, body, 'public, max-age=1');
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  reader.closedBodies.set(id, { body, etag });
  if (reader.closedBodies.size > 8) reader.closedBodies.delete(reader.closedBodies.keys().next().value!);
  return send(req, res, body, 'public, max-age=86400, immutable', etag);
}

function send(req: IncomingMessage, res: ServerResponse, body: string, cacheControl: string, etag?: string): void {
  res.setHeader('cache-control', cacheControl);
  res.setHeader('access-control-allow-origin', '*');
  if (etag) {
    res.setHeader('etag', etag);
    if (req.headers['if-none-match'] === etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
  }
  plain(res, 200, body);
}

function plain(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(body);
}
