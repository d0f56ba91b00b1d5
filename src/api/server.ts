import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { GraphQLFormattedError } from 'graphql';
import type { Config } from '../config.js';
import { logger } from '../logger.js';
import type { RateLimitEvents } from '../metrics.js';
import { bearer, createAuthenticator } from './auth.js';
import { ipLimit } from './clientLimit.js';
import { corsFor } from './cors.js';
import { queryLimits } from './queryLimits.js';
import { buildResolvers, type ApiServices, type Ctx } from './resolvers.js';
import { serveConsole } from './console/serve.js';
import { isRedisUnavailable } from '../../projections/redis-ordering/index.js';
import { unavailable } from './errors.js';
import { noSubscriptionOverHttp } from './live/overHttp.js';

const log = logger.child({ component: 'http' });

export const typeDefs = readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8');

export interface HttpHooks {
  /** 200 only when every dependency answers, the role's consumers are assigned and nothing is failing */
  ready: () => Promise<{ ok: boolean; checks: Record<string, boolean>; failing: Record<string, string> }>;
  metrics: () => Promise<{ contentType: string; body: string }>;
  observe?: (operation: string, seconds: number, ok: boolean) => void;
  limits?: RateLimitEvents;
}

function mergeResolvers(...parts: (Record<string, Record<string, unknown>> | undefined)[]) {
  const out: Record<string, Record<string, unknown>> = {};
  for (const p of parts) for (const [type, fields] of Object.entries(p ?? {})) out[type] = { ...(out[type] ?? {}), ...fields };
  return out;
}

export async function createApollo(services: ApiServices | null): Promise<ApolloServer<Ctx>> {
  const production = services?.config.NODE_ENV === 'production';
  const limits = services ? queryLimits(services.config) : null;
  const apollo = new ApolloServer<Ctx>({
    typeDefs,
    resolvers: mergeResolvers(buildResolvers() as never, services?.extraResolvers as never),
    includeStacktraceInErrorResponses: !production,
    // hot path: no landing page or usage reporting plugins on a server that answers a crowd
    csrfPrevention: true,
    plugins: [ApolloServerPluginCacheControlDisabled(), ApolloServerPluginLandingPageDisabled(), ...(limits?.plugins ?? [])],
    validationRules: [...(limits?.validationRules ?? []), noSubscriptionOverHttp],
    parseOptions: limits?.parseOptions,
    formatError: (formatted: GraphQLFormattedError, error: unknown) => {
      const code = formatted.extensions?.code;
      if (code === 'INTERNAL_SERVER_ERROR' || code === undefined) {
        const err = unwrapResolverError(error);
        // Redis lost for a moment (a failover): retryable, and nothing was answered from it
        if (isRedisUnavailable(err)) {
          log.warn({ err }, 'redis unavailable');
          const u = unavailable(1000);
          return { message: u.message, extensions: u.extensions };
        }
        log.error({ err }, 'unexpected error');
        return production ? { message: 'internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } } : formatted;
      }
      return formatted;
    },
  });
  await apollo.start();
  return apollo;
}

const tooLarge = () => Object.assign(new Error('body too large'), { status: 413 });

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  // refused before a byte is read when the client says how much is coming
  if (Number(req.headers['content-length']) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw tooLarge();
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const errorBody = (message: string, code: string, extensions: Record<string, unknown> = {}) =>
  JSON.stringify({ errors: [{ message, extensions: { code, ...extensions } }] });

/** What answers /graphql once the API role runs. */
export interface ApiEndpoint {
  apollo: ApolloServer<Ctx>;
  services: ApiServices;
}

/** What stands in front of GraphQL, made once the API role runs (its config says how). */
function edgeOf(config: Config, hooks: HttpHooks) {
  hooks.limits?.configure('ip', config.RATE_LIMIT_IP_PER_SEC);
  hooks.limits?.configure('enter', config.ENTER_RATE_PER_SEC);
  return {
    auth: createAuthenticator(config),
    cors: corsFor(config.CORS_ORIGINS),
    perAddress: config.RATE_LIMIT_IP_PER_SEC > 0 ? ipLimit(config.RATE_LIMIT_IP_PER_SEC, config.TRUST_PROXY) : null,
    maxBody: config.GRAPHQL_MAX_BODY_BYTES,
  };
}

/**
 * A thin node:http integration of Apollo (its documented `executeHTTPGraphQLRequest`), beside the
 * health and metrics routes. No web framework on the hot path. The server listens before the roles
 * start (/readyz tells why they have not yet): `api()` says `starting` until GraphQL is served, and
 * null in a process without the API role. In front of GraphQL, in this order: CORS (a preflight
 * ends there), the token, the per-address limit for requests without a valid token (429 before the
 * body is read), the body cap (413), then Apollo with its query limits.
 */
export function createHttpServer(api: () => ApiEndpoint | 'starting' | null, hooks: HttpHooks) {
  let edge: ReturnType<typeof edgeOf> | null = null;
  let maxBody = 64 * 1024;
  let inFlight = 0;
  let draining = false;
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (draining) {
      // keep-alive clients keep sending while we drain: tell them to go elsewhere
      res.setHeader('connection', 'close');
      res.setHeader('retry-after', '1');
      return send(res, 503, 'application/json', '{"errors":[{"message":"shutting down","extensions":{"code":"UNAVAILABLE"}}]}');
    }
    inFlight++;
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/healthz') return send(res, 200, 'application/json', '{"ok":true}');
      if (url.pathname === '/readyz') {
        const r = await hooks.ready();
        return send(res, r.ok ? 200 : 503, 'application/json', JSON.stringify(r));
      }
      if (url.pathname === '/metrics') {
        const m = await hooks.metrics();
        return send(res, 200, m.contentType, m.body);
      }
      if (url.pathname.startsWith('/console') && api() !== null && serveConsole(url.pathname, res)) return;
      const endpoint = url.pathname === '/graphql' ? api() : null;
      if (endpoint === 'starting') {
        res.setHeader('retry-after', '1');
        return send(res, 503, 'application/json', '{"errors":[{"message":"starting","extensions":{"code":"UNAVAILABLE"}}]}');
      }
      if (!endpoint) return send(res, 404, 'application/json', '{"error":"not found"}');
      const { apollo, services } = endpoint;
      edge ??= edgeOf(services.config, hooks);
      const { auth, cors, perAddress } = edge;
      maxBody = edge.maxBody;
      if (cors(req, res)) return;

      const token = bearer(req.headers.authorization);
      const caller = token ? await auth.verify(token) : null;
      if (!caller && perAddress) {
        const waitMs = await perAddress(req);
        if (waitMs > 0) {
          hooks.limits?.refused('ip');
          res.setHeader('retry-after', String(Math.ceil(waitMs / 1000)));
          return send(res, 429, 'application/json', errorBody('too many requests', 'RATE_LIMITED', { retryAfterMs: waitMs }));
        }
      }
      const headers = new HeaderMap();
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      let body: unknown = undefined;
      if (req.method === 'POST') {
        const text = await readBody(req, maxBody);
        try {
          body = text ? JSON.parse(text) : {};
        } catch {
          return send(res, 400, 'application/json', errorBody('body is not JSON', 'BAD_REQUEST'));
        }
      }
      const started = performance.now();
      const result = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
        context: async () => ({ caller, services, limits: hooks.limits }),
      });
      for (const [k, v] of result.headers) res.setHeader(k, v);
      res.statusCode = result.status ?? 200;
      let out = '';
      if (result.body.kind === 'complete') out = result.body.string;
      else for await (const chunk of result.body.asyncIterator) out += chunk;
      res.end(out);
      hooks.observe?.(typeof (body as { operationName?: string })?.operationName === 'string' ? (body as { operationName: string }).operationName : 'graphql', (performance.now() - started) / 1000, res.statusCode < 500);
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      if (status === 500) log.error({ err }, 'request failed');
      if (status === 413) {
        // the rest of the body is not read: the connection cannot carry another request
        res.setHeader('connection', 'close');
        if (!res.headersSent) send(res, 413, 'application/json', errorBody(`body too large (over ${maxBody} bytes)`, 'BAD_REQUEST'));
      } else if (!res.headersSent) send(res, status, 'application/json', errorBody('internal server error', 'INTERNAL_SERVER_ERROR'));
    } finally {
      inFlight--;
    }
  });
  server.keepAliveTimeout = 65_000;
  return Object.assign(server, {
    /** Stops taking requests and resolves once those in flight are answered (or at the timeout). */
    async drain(timeoutMs: number): Promise<void> {
      draining = true;
      edge?.auth.close();
      server.close();
      server.closeIdleConnections();
      const end = Date.now() + timeoutMs;
      while (inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      server.closeAllConnections();
    },
  });
}

function send(res: ServerResponse, status: number, type: string, body: string) {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.end(body);
}
