import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fairnessBundle } from './fairnessBundle.js';

/**
 * The drop console's files (`/console`): plain HTML, CSS and scripts, graphql-ws's own browser
 * build from node_modules, and the fairness verifier bundled for the receipt check
 * (./fairnessBundle.ts). Nothing comes from a CDN; the policy below lets the page talk only to this
 * server.
 */
const here = (name: string) => new URL(`./${name}`, import.meta.url);
const graphqlWsUmd = join(dirname(createRequire(import.meta.url).resolve('graphql-ws')), '..', 'umd', 'graphql-ws.min.js');

const FILES: Record<string, { type: string; path: URL | string }> = {
  '/console': { type: 'text/html; charset=utf-8', path: here('index.html') },
  '/console/': { type: 'text/html; charset=utf-8', path: here('index.html') },
  '/console/console.js': { type: 'text/javascript; charset=utf-8', path: here('console.js') },
  '/console/receipt.js': { type: 'text/javascript; charset=utf-8', path: here('receipt.js') },
  '/console/console.css': { type: 'text/css; charset=utf-8', path: here('console.css') },
  '/console/graphql-ws.js': { type: 'text/javascript; charset=utf-8', path: graphqlWsUmd },
};

const POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const cache = new Map<string, Buffer>();
const FAIRNESS_JS = '/console/fairness.js';

/** Answers a console path (true), or leaves the request to the next route (false). */
export function serveConsole(pathname: string, res: ServerResponse): boolean {
  if (pathname === FAIRNESS_JS) {
    fairnessBundle().then(
      (body) => send(res, 200, 'text/javascript; charset=utf-8', body),
      // the error is esbuild's about our own files: nothing of a request's in it
      (err: unknown) => send(res, 500, 'text/plain; charset=utf-8', `the receipt check could not be built: ${(err as Error).message}`),
    );
    return true;
  }
  const file = FILES[pathname];
  if (!file) return false;
  let body = cache.get(pathname);
  if (!body) cache.set(pathname, (body = readFileSync(file.path)));
  send(res, 200, file.type, body);
  return true;
}

function send(res: ServerResponse, status: number, type: string, body: Buffer | string): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('content-security-policy', POLICY);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('cache-control', 'no-cache');
  res.end(body);
}
