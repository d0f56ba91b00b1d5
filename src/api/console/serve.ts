import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The drop console's files (`/console`): plain HTML, CSS and a script, plus graphql-ws's own
 * browser build from node_modules. Nothing comes from a CDN; the policy below lets the page talk
 * only to this server.
 */
const here = (name: string) => new URL(`./${name}`, import.meta.url);
const graphqlWsUmd = join(dirname(createRequire(import.meta.url).resolve('graphql-ws')), '..', 'umd', 'graphql-ws.min.js');

const FILES: Record<string, { type: string; path: URL | string }> = {
  '/console': { type: 'text/html; charset=utf-8', path: here('index.html') },
  '/console/': { type: 'text/html; charset=utf-8', path: here('index.html') },
  '/console/console.js': { type: 'text/javascript; charset=utf-8', path: here('console.js') },
  '/console/console.css': { type: 'text/css; charset=utf-8', path: here('console.css') },
  '/console/graphql-ws.js': { type: 'text/javascript; charset=utf-8', path: graphqlWsUmd },
};

const POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const cache = new Map<string, Buffer>();

/** Answers a console path (true), or leaves the request to the next route (false). */
export function serveConsole(pathname: string, res: ServerResponse): boolean {
  const file = FILES[pathname];
  if (!file) return false;
  let body = cache.get(pathname);
  if (!body) cache.set(pathname, (body = readFileSync(file.path)));
  res.statusCode = 200;
  res.setHeader('content-type', file.type);
  res.setHeader('content-security-policy', POLICY);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('cache-control', 'no-cache');
  res.end(body);
  return true;
}
