import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { Kind, parse, type GraphQLFormattedError } from 'graphql';
import { logger } from '../logger.js';
import type { EdgeEvents, RateLimitEvents, RateLimitName } from '../metrics.js';
import { bearer, createAuthenticator } from './auth.js';
import type { Budget } from './budgets.js';
import { corsFor } from './cors.js';
import { badTokenBlocks, bearerMatches, edgeBudgets, edgeFaults, pathOf, safeAddress, tarpit, type EdgeFault } from './edge.js';
import { maskedError } from './masking.js';
import { queryLimits } from './queryLimits.js';
import { buildResolvers, type ApiServices, type Ctx } from './resolvers.js';
import { serveConsole } from './console/serve.js';
import { isFairnessPath, serveFairness } from './fairness/http.js';
import { isRedisUnavailable } from '../../projections/redis-ordering/index.js';
import { unavailable } from './errors.js';
import { noSubscriptionOverHttp } from './live/overHttp.js';
import { SoldOutReplies } from './soldOutReplies.js';

const log = logger.child({ component: 'http' });

export const typeDefs = readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8');

export interface HttpHooks {
  /** 200 only when every dependency answers, the role's consumers are assigned and nothing is failing */
  ready: () => Promise<{
    ok: boolean;
    checks: Record<string, boolean>;
    failing: Record<string, string>;
    degraded?: Record<string, string>;
  }>;
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** `operation`: a root field of the schema, or `invalid` (see the edge plugin): never a name a client made up */
  observe?: (operation: string, seconds: number, ok: boolean) => void;
  limits?: RateLimitEvents;
  edge?: EdgeEvents;
  /** when set, /metrics and /readyz's detail need it as a bearer token */
  metricsToken?: string;
}

function mergeResolvers(...parts: (Record<string, Record<string, unknown>> | undefined)[]) {
  const out: Record<string, Record<string, unknown>> = {};
  for (const p of parts) for (const [type, fields] of Object.entries(p ?? {})) out[type] = { ...(out[type] ?? {}), ...fields };
  return out;
}

/**
 * What the edge needs to know of each request, kept on its context: the bytes of a document Apollo
 * parsed and validated anew (a cached one costs neither; its sender's budget pays for them), and the
 * root field it asked for first, the only operation name metrics take. One listener for every
 * request: its state is the context's.
 */
const edgeListener: GraphQLRequestListener<Ctx> = {
  async parsingDidStart(rc) {
    if (rc.contextValue.seen) rc.contextValue.seen.parsedBytes = rc.source?.length ?? 0;
  },
  async didResolveOperation(rc) {
    const seen = rc.contextValue.seen;
    if (!seen) return;
    const root = rc.operation?.selectionSet.selections ?? [];
    const first = root[0];
    seen.operation = first?.kind === 'Field' && ROOT_FIELDS.has(first.name.value) ? first.name.value : 'other';
    seen.loneEnter =
      rc.operation?.operation === 'mutation' && root.length === 1 && seen.operation === 'enter' && !first!.directives?.length;
  },
};
const edgePlugin: ApolloServerPlugin<Ctx> = { requestDidStart: async () => edgeListener };

/** The operation labels metrics may carry: the schema's root fields and the introspection ones. */
const ROOT_FIELDS = new Set([
  '__typename',
  '__schema',
  '__type',
  ...parse(typeDefs).definitions.flatMap((d) =>
    d.kind === Kind.OBJECT_TYPE_DEFINITION && ['Query', 'Mutation', 'Subscription'].includes(d.name.value)
      ? (d.fields ?? []).map((f) => f.name.value)
      : [],
  ),
]);

export async function createApollo(services: ApiServices | null): Promise<ApolloServer<Ctx>> {
  const production = services?.config.NODE_ENV === 'production';
  const limits = services ? queryLimits(services.config) : null;
  const apollo = new ApolloServer<Ctx>({
    typeDefs,
    resolvers: mergeResolvers(buildResolvers() as never, services?.extraResolvers as never),
    includeStacktraceInErrorResponses: !production,
    // hot path: no landing page or usage reporting plugins on a server that answers a crowd
    csrfPrevention: true,
    plugins: [ApolloServerPluginCacheControlDisabled(), ApolloServerPluginLandingPageDisabled(), edgePlugin, ...(limits?.plugins ?? [])],
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
      return production ? maskedError(formatted) : formatted;
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
function edgeOf(services: ApiServices, hooks: HttpHooks) {
  const { config } = services;
  hooks.limits?.configure('ceiling', config.RATE_LIMIT_IP_CEILING_PER_SEC);
  hooks.limits?.configure('ip', config.RATE_LIMIT_IP_PER_SEC);
  hooks.limits?.configure('user', config.RATE_LIMIT_USER_COST_PER_SEC);
  hooks.limits?.configure('admin', config.RATE_LIMIT_ADMIN_COST_PER_SEC);
  hooks.limits?.configure('enter', config.ENTER_RATE_PER_SEC);
  return {
    auth: createAuthenticator(config),
    cors: corsFor(config.CORS_ORIGINS),
    budgets: edgeBudgets(config, services.ordering),
    badTokens: badTokenBlocks(),
    tarpit: tarpit(),
    maxBody: config.GRAPHQL_MAX_BODY_BYTES,
    replies: new SoldOutReplies(),
  };
}

/**
 * A thin node:http integration of Apollo (its documented `executeHTTPGraphQLRequest`), beside the
 * health and metrics routes. No web framework on the hot path. The server listens before the roles
 * start (/readyz tells why they have not yet): `api()` says `starting` until GraphQL is served, and
 * null in a process without the API role.
 *
 * No input ends the process or answers 500: every listener catches what it throws, and bad input
 * gets a 4xx, is counted (firstcome_edge_refused_total) and logged once per cause. In front of
 * GraphQL, in this order: the address's ceiling (before anything of the request is parsed), the
 * request target, CORS (a preflight ends there), the token (not verified for an address whose bad
 * tokens spent its budget), the caller's budget (its user's, or its address's without a valid
 * token; a long body's parse paid ahead; 429 held until it refills, before the body is read), the
 * body cap (413), then Apollo with its query limits. What parsing cost is settled afterwards: a
 * document parsed anew is charged, a cached one gives its prepayment back.
 */
export function createHttpServer(api: () => ApiEndpoint | 'starting' | null, hooks: HttpHooks) {
  let edge: ReturnType<typeof edgeOf> | null = null;
  let maxBody = 64 * 1024;
  let inFlight = 0;
  let draining = false;
  const fault: EdgeFault = edgeFaults(hooks.edge);
  const internalsOpen = (req: IncomingMessage) =>
    hooks.metricsToken === undefined || bearerMatches(req.headers.authorization, hooks.metricsToken);

  const refuse = (res: ServerResponse, limit: RateLimitName, waitMs: number) => {
    hooks.limits?.refused(limit);
    edge!.tarpit.refuse(res, waitMs, errorBody('too many requests', 'RATE_LIMITED', { retryAfterMs: waitMs }));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (draining) {
      // keep-alive clients keep sending while we drain: tell them to go elsewhere
      res.setHeader('connection', 'close');
      res.setHeader('retry-after', '1');
      return send(res, 503, 'application/json', '{"errors":[{"message":"shutting down","extensions":{"code":"UNAVAILABLE"}}]}');
    }
    const endpoint = api();
    if (endpoint && endpoint !== 'starting') edge ??= edgeOf(endpoint.services, hooks);
    const budgets = endpoint && endpoint !== 'starting' ? edge!.budgets : null;
    const address = budgets ? safeAddress(budgets.addressOf, req) : '';
    if (budgets?.ceiling) {
      const waitMs = await budgets.ceiling.take(address);
      if (waitMs > 0) return refuse(res, 'ceiling', waitMs);
    }
    const target = pathOf(req.url);
    if (!target) {
      fault('bad-target', 'the request target is not a URL');
      return send(res, 400, 'application/json', errorBody('the request target is not a URL', 'BAD_REQUEST'));
    }
    const { pathname, search } = target;
    if (pathname === '/healthz') return send(res, 200, 'application/json', '{"ok":true}');
    if (pathname === '/readyz') {
      const r = await hooks.ready();
      // the status is for load balancers; which store failed, and why, is for operators
      return send(res, r.ok ? 200 : 503, 'application/json', JSON.stringify(internalsOpen(req) ? r : { ok: r.ok }));
    }
    if (pathname === '/metrics') {
      if (!internalsOpen(req)) {
        fault('unauthorized-internals', '/metrics without METRICS_TOKEN');
        res.setHeader('www-authenticate', 'Bearer');
        return send(res, 401, 'application/json', '{"error":"METRICS_TOKEN required as a bearer token"}');
      }
      const m = await hooks.metrics();
      return send(res, 200, m.contentType, m.body);
    }
    if (pathname.startsWith('/console') && endpoint !== null && serveConsole(pathname, res)) return;
    if (isFairnessPath(pathname) && endpoint && endpoint !== 'starting' && endpoint.services.fairness) {
      // public and tokenless: each request spends its address's budget, as anonymous GraphQL does
      const waitMs = (await budgets!.anonymous?.take(address)) ?? 0;
      if (waitMs > 0) return refuse(res, 'ip', waitMs);
      return serveFairness(pathname, req, res, endpoint.services.fairness);
    }
    if (pathname !== '/graphql' || !endpoint) return send(res, 404, 'application/json', '{"error":"not found"}');
    if (endpoint === 'starting') {
      res.setHeader('retry-after', '1');
      return send(res, 503, 'application/json', '{"errors":[{"message":"starting","extensions":{"code":"UNAVAILABLE"}}]}');
    }
    const { apollo, services } = endpoint;
    const { auth, cors, badTokens } = edge!;
    maxBody = edge!.maxBody;
    if (cors(req, res)) return;

    const token = bearer(req.headers.authorization);
    if (token) {
      const blockedMs = badTokens.blocked(address);
      if (blockedMs > 0) return refuse(res, 'ip', blockedMs);
    }
    const caller = token ? await auth.verify(token) : null;
    const [budget, identity, limit]: [Budget | null, string, RateLimitName] = caller
      ? caller.admin
        ? [budgets!.admin, caller.userId, 'admin']
        : [budgets!.user, caller.userId, 'user']
      : [budgets!.anonymous, address, 'ip'];
    // a long body is paid for before it is parsed: of a burst of costly queries, one goes ahead
    const prepaid = budgets!.payAhead(Number(req.headers['content-length']) || search.length);
    if (budget) {
      const waitMs = (await budget.take(identity)) || (await budget.prepay(identity, prepaid));
      if (waitMs > 0) {
        if (token && !caller) badTokens.block(address, waitMs);
        return refuse(res, limit, waitMs);
      }
    }
    let body: unknown = undefined;
    let replyKey: string | null = null;
    let crowdAsked: Ctx['crowdAsked'];
    if (req.method === 'POST') {
      const text = await readBody(req, maxBody);
      // a repeat of a request the crowd memory answered SOLD_OUT: the same answer, without GraphQL
      replyKey = caller && !caller.admin && services.enter.fromMemory ? edge!.replies.keyOf(req, text) : null;
      const known = replyKey === null ? undefined : edge!.replies.get(replyKey);
      if (known) {
        const started = performance.now();
        const answer = await services.enter.fromMemory!(known.campaignId, caller!.userId);
        if (answer === 'SOLD_OUT') {
          for (const [k, v] of known.headers) res.setHeader(k, v);
          res.statusCode = known.status;
          res.end(known.body);
          if (budget) void budget.refund(identity, prepaid);
          hooks.edge?.replayed?.();
          return hooks.observe?.('enter', (performance.now() - started) / 1000, true);
        }
        if (answer === 'counted') crowdAsked = { campaignId: known.campaignId, answer };
      }
      try {
        body = text ? JSON.parse(text) : {};
      } catch {
        fault('bad-body', 'the body is not JSON');
        return send(res, 400, 'application/json', errorBody('body is not JSON', 'BAD_REQUEST'));
      }
    }
    const headers = new HeaderMap();
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    const started = performance.now();
    const seen: NonNullable<Ctx['seen']> = { parsedBytes: 0 };
    const context: Ctx = { caller, services, limits: hooks.limits, enterBudget: budgets!.enter, seen, codeReads: new Map(), crowdAsked };
    const result = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'GET', headers, search, body },
      context: async () => context,
    });
    for (const [k, v] of result.headers) res.setHeader(k, v);
    res.statusCode = result.status ?? 200;
    let out = '';
    if (result.body.kind === 'complete') out = result.body.string;
    else for await (const chunk of result.body.asyncIterator) out += chunk;
    res.end(out);
    if (replyKey !== null && seen.soldOutFrom !== undefined && seen.loneEnter && result.body.kind === 'complete')
      edge!.replies.learn(replyKey, body, seen.soldOutFrom, { status: res.statusCode, headers: [...result.headers], body: out });
    if (budget) {
      // what parsing cost, against what was paid ahead: a cached document gives its prepayment
      // back; a parsed one pays what the body's estimate missed (the estimate counts the JSON around
      // the query too, and is kept: a small refund could lift the block its own debt set)
      if (seen.parsedBytes === 0) void budget.refund(identity, prepaid);
      else void budget.charge(identity, budgets!.parseCost(seen.parsedBytes) - prepaid);
    }
    hooks.observe?.(seen.operation ?? 'invalid', (performance.now() - started) / 1000, res.statusCode < 500);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    handle(req, res)
      .catch((err: unknown) => {
        const status = (err as { status?: number }).status;
        if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') {
          // the client went away mid-request (its body cut short): nobody is left to answer
          fault('aborted', 'the client closed the connection mid-request');
          return;
        }
        if (status === 413) {
          fault('too-large', `a body over ${maxBody} bytes`);
          // the rest of the body is not read: the connection cannot carry another request
          res.setHeader('connection', 'close');
          if (!res.headersSent) send(res, 413, 'application/json', errorBody(`body too large (over ${maxBody} bytes)`, 'BAD_REQUEST'));
          return;
        }
        fault('handler-fault', err);
        if (!res.headersSent) send(res, 500, 'application/json', errorBody('internal server error', 'INTERNAL_SERVER_ERROR'));
        else res.destroy();
      })
      .finally(() => inFlight--);
  });
  // what node:http cannot parse (a bad request line, header or chunk): a status line and close,
  // counted, never an error event nobody listens to
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    fault('client-error', err.code ?? 'unparsable request');
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
  server.keepAliveTimeout = 65_000;
  return Object.assign(server, {
    /** counts and logs (once per cause) what the edge turned away; the socket server shares it */
    fault,
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
