import type { IncomingMessage, Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { getOperationAST, GraphQLError, parse, specifiedRules, validate, type DocumentNode } from 'graphql';
import type { Context } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../../config.js';
import { logger } from '../../logger.js';
import type { EdgeEvents, RateLimitEvents } from '../../metrics.js';
import { bearer, type Authenticator, type Caller } from '../auth.js';
import { edgeBudgets, edgeFaults, endSocket, pathOf, safeAddress } from '../edge.js';
import { hideSuggestions, maskedError } from '../masking.js';
import { queryLimits } from '../queryLimits.js';
import type { ApiServices } from '../resolvers.js';
import { DateTime } from '../scalars.js';
import { SocketLeases } from '../../../projections/redis-ordering/index.js';
import { typeDefs } from '../server.js';
import type { ChangeHub } from './changeHub.js';
import { liveResolvers, type LiveCtx } from './subscriptions.js';
import { gifticonResolvers } from '../codes.js';

const log = logger.child({ component: 'ws' });

/** Close codes a client can act on (4400-4499 as graphql-transport-ws uses them). */
export const CLOSE = {
  unauthenticated: 4401,
  idle: 4408,
  /** Redis, which counts a user's sockets, cannot be reached: try again shortly (RFC 6455's 1013) */
  tryAgain: 1013,
  tooManySockets: 4429,
  goingAway: 1001,
} as const;

type Extra = {
  socket: WebSocket;
  request: IncomingMessage;
  /** its place among its user's sockets, across every API process (SocketLeases) */
  leaseId?: string;
  caller?: Caller;
  /** since when the socket holds no subscription (null while it holds one) */
  idleSince?: number | null;
  /** the token's `exp` (ms): the socket is closed then, as a request with that token would be refused */
  expiresAt?: number;
};

/** `exp` of a token the authenticator has just accepted (its signature checked), in ms. */
function expiryOf(token: string): number | undefined {
  try {
    const exp = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const refusal = (message: string, code: string, extensions: Record<string, unknown> = {}) =>
  new GraphQLError(message, { extensions: { code, ...extensions } });

/** Browsers send Origin; a socket from a page of another site may ride its user's token. */
function originAllowed(req: IncomingMessage, allowed: readonly string[] | undefined): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser
  if (allowed?.includes(origin)) return true;
  const host = req.headers.host;
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
}

/**
 * GraphQL subscriptions over graphql-ws (graphql-transport-ws) on the HTTP server's own port and
 * path. The token is checked once, at `connection_init`, by the same authenticator as HTTP. Only
 * subscription operations are taken here (queries and mutations go through POST /graphql, with
 * their edge limits); each document meets the same query limits as over HTTP. Limits: sockets per
 * user, subscriptions per socket, and a socket holding no subscription for WS_IDLE_TIMEOUT_MS is
 * closed; a peer that stops answering pings is dropped. A socket that goes frees its watches.
 */
export function attachSubscriptions(
  server: Server,
  deps: { config: Config; services: ApiServices; hub: ChangeHub; auth: Authenticator; edge?: EdgeEvents; limits?: RateLimitEvents },
) {
  const { config, services, hub, auth } = deps;
  const production = config.NODE_ENV === 'production';
  const fault = edgeFaults(deps.edge);
  const budgets = edgeBudgets(config, services.ordering);
  const perAddress = new Map<string, number>();
  const schema = makeExecutableSchema({ typeDefs, resolvers: { DateTime, ...gifticonResolvers(), ...liveResolvers() } as never });
  const limits = queryLimits(config);
  const rules = [...specifiedRules, ...limits.validationRules!];
  // sockets per user are counted in Redis, across every API process
  const leases = new SocketLeases(services.ordering);
  let nextLease = 0;
  const instance = randomUUID().slice(0, 8);
  const sockets = new Set<Context<Record<string, unknown>, Extra>>();
  let closing = false;

  const wss = new WebSocketServer({ noServer: true, maxPayload: config.GRAPHQL_MAX_BODY_BYTES });
  /**
   * Before a socket is taken: its path, its Origin (403 for a browser page of another site), its
   * address's open sockets (WS_MAX_SOCKETS_PER_ADDRESS, before any connection_init) and its address's
   * ceiling. Nothing a client sends here can throw out of the listener.
   */
  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (closing) return endSocket(socket, '503 Service Unavailable');
    const target = pathOf(req.url);
    if (!target) {
      fault('bad-upgrade', 'the request target is not a URL');
      return endSocket(socket, '400 Bad Request');
    }
    if (target.pathname !== '/graphql') return endSocket(socket, '404 Not Found');
    if (!originAllowed(req, config.CORS_ORIGINS)) {
      fault('foreign-origin', 'a WebSocket upgrade from an origin not in CORS_ORIGINS');
      return endSocket(socket, '403 Forbidden');
    }
    const address = safeAddress(budgets.addressOf, req);
    const waitMs = budgets.ceiling ? await budgets.ceiling.take(address) : 0;
    if (waitMs > 0) {
      deps.limits?.refused('ceiling');
      return endSocket(socket, '429 Too Many Requests');
    }
    const open = perAddress.get(address) ?? 0;
    if (open >= config.WS_MAX_SOCKETS_PER_ADDRESS) {
      fault('sockets-per-address', `more than ${config.WS_MAX_SOCKETS_PER_ADDRESS} sockets from one address`);
      return endSocket(socket, '429 Too Many Requests');
    }
    if (socket.destroyed) return;
    wss.handleUpgrade(req, socket, head, (ws) => {
      perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
      ws.once('close', () => {
        const left = (perAddress.get(address) ?? 1) - 1;
        if (left > 0) perAddress.set(address, left);
        else perAddress.delete(address);
      });
      wss.emit('connection', ws, req);
      // a peer's bad frame (wrong opcode, unmasked, oversized) is its fault, not ours: counted and
      // logged once, not printed with a stack per socket as graphql-ws's own listener would (ws closes it)
      ws.removeAllListeners('error');
      ws.on('error', (err: Error & { code?: string }) => fault('bad-frame', err.code ?? err.message));
    });
  };
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // a socket that errors before it is handed to ws must not raise an error event nobody hears
    socket.on('error', () => socket.destroy());
    upgrade(req, socket, head).catch((err: unknown) => {
      fault('handler-fault', err);
      endSocket(socket, '400 Bad Request');
    });
  };
  server.on('upgrade', onUpgrade);

  const served = useServer<Record<string, unknown>, Extra>(
    {
      schema,
      connectionInitWaitTimeout: 3000,
      onConnect: async (ctx) => {
        const header = ctx.connectionParams?.authorization;
        const token = bearer(typeof header === 'string' ? header : undefined);
        const caller = token ? await auth.verify(token) : null;
        if (!caller) {
          ctx.extra.socket.close(CLOSE.unauthenticated, 'UNAUTHENTICATED: connectionParams.authorization must be "Bearer <valid JWT>"');
          return false;
        }
        const leaseId = `${instance}:${nextLease++}`;
        let placed: boolean;
        try {
          placed = await leases.acquire(caller.userId, leaseId, config.WS_MAX_SOCKETS_PER_USER);
        } catch {
          // without Redis no push could reach the socket anyway: refused, to try again (never let in uncounted)
          ctx.extra.socket.close(CLOSE.tryAgain, 'UNAVAILABLE: try again shortly');
          return false;
        }
        if (!placed) {
          ctx.extra.socket.close(CLOSE.tooManySockets, `too many sockets for this user (at most ${config.WS_MAX_SOCKETS_PER_USER})`);
          return false;
        }
        ctx.extra.caller = caller;
        ctx.extra.leaseId = leaseId;

        ctx.extra.expiresAt = expiryOf(token!);
        ctx.extra.idleSince = Date.now();
        sockets.add(ctx);
        return true;
      },
      onSubscribe: async (ctx, _id, payload) => {
        const caller = ctx.extra.caller!;
        // the id being subscribed is already counted
        if (Object.keys(ctx.subscriptions).length > config.WS_MAX_SUBSCRIPTIONS_PER_SOCKET) {
          return [refusal(`too many subscriptions on this socket (at most ${config.WS_MAX_SUBSCRIPTIONS_PER_SOCKET})`, 'BAD_REQUEST')];
        }
        let document: DocumentNode;
        try {
          document = parse(payload.query, limits.parseOptions);
        } catch (err) {
          return [refusal((err as Error).message, 'GRAPHQL_PARSE_FAILED')];
        }
        const op = getOperationAST(document, payload.operationName);
        if (!op) return [refusal('no operation to run (name it with operationName)', 'BAD_REQUEST')];
        if (op.operation !== 'subscription')
          return [refusal(`only subscriptions over WebSocket; send a ${op.operation} to POST /graphql`, 'BAD_REQUEST')];
        const errors = validate(schema, document, rules);
        if (errors.length > 0)
          return errors.map(
            (e) =>
              new GraphQLError(production ? hideSuggestions(e.message) : e.message, {
                nodes: e.nodes,
                extensions: { ...e.extensions, code: 'GRAPHQL_VALIDATION_FAILED' },
              }),
          );
        // a subscribe spends from the same budget as a request over HTTP (counted and checked above
        // first: graphql-ws has counted this subscription already, and others may arrive meanwhile)
        const budget = caller.admin ? budgets.admin : budgets.user;
        const waitMs = budget ? await budget.take(caller.userId) : 0;
        if (waitMs > 0) {
          deps.limits?.refused(caller.admin ? 'admin' : 'user');
          return [refusal('too many requests', 'RATE_LIMITED', { retryAfterMs: waitMs })];
        }
        void budget?.charge(caller.userId, budgets.parseCost(payload.query.length));
        ctx.extra.idleSince = null;
        const contextValue: LiveCtx = { caller, services, hub };
        return { schema, document, operationName: payload.operationName, variableValues: payload.variables, contextValue };
      },
      // what execution says (a variable's value coerced, an enum value misspelled) is masked as over HTTP
      onNext: production
        ? (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: result.errors.map((e) => maskedError(e)) } : result)
        : undefined,
      onClose: (ctx) => {
        if (!sockets.delete(ctx)) return;
        void leases.release(ctx.extra.caller!.userId, ctx.extra.leaseId!).catch(() => undefined); // else its lease runs out
      },
    },
    wss,
    config.WS_KEEPALIVE_MS,
  );

  // one sweep for every socket instead of a timer each: idle is counted from the last subscription's end
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const ctx of sockets) {
        if (ctx.extra.expiresAt !== undefined && now >= ctx.extra.expiresAt)
          ctx.extra.socket.close(CLOSE.unauthenticated, 'UNAUTHENTICATED: the token has expired');
        else if (Object.keys(ctx.subscriptions).length > 0) ctx.extra.idleSince = null;
        else if (ctx.extra.idleSince == null) ctx.extra.idleSince = now;
        else if (now - ctx.extra.idleSince >= config.WS_IDLE_TIMEOUT_MS) ctx.extra.socket.close(CLOSE.idle, 'idle: no subscription');
      }
    },
    Math.min(1000, Math.max(50, config.WS_IDLE_TIMEOUT_MS / 4)),
  );
  sweep.unref();
  // the leases of the sockets still open here; a process that dies stops renewing, and its places free themselves
  const renew = setInterval(() => {
    void leases.renew([...sockets].map((ctx) => [ctx.extra.caller!.userId, ctx.extra.leaseId!] as [string, string])).catch(() => undefined);
  }, leases.leaseMs / 3);
  renew.unref();

  return {
    get stats() {
      let subscriptions = 0;
      for (const ctx of sockets) subscriptions += Object.keys(ctx.subscriptions).length;
      return { sockets: wss.clients.size, users: new Set([...sockets].map((ctx) => ctx.extra.caller!.userId)).size, subscriptions };
    },
    /** Takes no more sockets and closes the open ones with 1001 (going away), each ending its subscriptions. */
    async close(timeoutMs = 2000): Promise<void> {
      closing = true;
      clearInterval(sweep);
      clearInterval(renew);
      for (const ws of wss.clients) ws.close(CLOSE.goingAway, 'server shutting down');
      const end = Date.now() + timeoutMs;
      while (wss.clients.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      for (const ws of wss.clients) ws.terminate();
      await Promise.resolve(served.dispose()).catch((err: unknown) => log.warn({ err }, 'closing the WebSocket server'));
      server.off('upgrade', onUpgrade);
    },
  };
}
