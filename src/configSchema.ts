import proxyaddr from 'proxy-addr';
import { z } from 'zod';
import { FairnessKey } from './domain/fairness/line.js';
import { COMPRESSIONS, unavailable, type Compression } from './infra/kafka/compression.js';
import { parseKeyRing } from './infra/codeKeys/keyRing.js';

/**
 * Every environment variable firstcome reads, with its default and its check: the schema that
 * src/config.ts loads, and that `npm run docs:config` turns into docs/configuration.md (each
 * variable's JSDoc comment is its entry there).
 */
/** An optional variable: left out or empty means unset. */
const unsetIfEmpty = <T extends z.ZodType>(t: T) => z.preprocess((v) => (v === '' ? undefined : v), t.optional());
const limit = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

export const schema = z.object({
  /**
   * `production` requires JWT_SECRET (unless JWT_JWKS_URL is set), answers unexpected failures
   * without a stack trace and hides graphql-js's suggestions.
   */
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  /** The HTTP port: `POST /graphql`, its WebSocket, `/healthz`, `/readyz`, `/metrics` and `/console`. */
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  /** The Kafka brokers, `host:port[,host:port…]`. */
  KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((s) =>
      s
        .split(',')
        .map((b) => b.trim())
        .filter(Boolean),
    )
    .refine((bs) => bs.length > 0 && bs.every((b) => /^[^:\s]+:\d+$/.test(b)), 'expected host:port[,host:port…]'),
  /** The one Redis, when REDIS_CLUSTER_NODES is unset. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Seed nodes of a Redis Cluster; when set, every Redis use goes to the cluster and REDIS_URL is not used. */
  REDIS_CLUSTER_NODES: unsetIfEmpty(
    z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean),
      )
      .refine(
        (ns) =>
          ns.length > 0 && ns.every((n) => /^(\[[0-9a-fA-F:.]+\]|[^:\s,[\]]+):\d{1,5}$/.test(n) && Number(n.split(':').pop()) <= 65535),
        'expected host:port[,host:port…]',
      ),
  ),
  /** The Postgres database of the read side and the jobs; created if missing. */
  DATABASE_URL: z
    .string()
    .default('postgresql://postgres@127.0.0.1:5432/firstcome')
    .refine((s) => /^postgres(ql)?:\/\//.test(s), 'expected a postgresql:// URL'),
  /** When set, the log is also archived to EventStoreDB streams `campaign-<id>`; unset: the archive is off. */
  EVENTSTORE_URL: z.string().min(1).optional(),
  /**
   * HS256 tokens signed with it are accepted (at least 16 characters). Unset: a development default,
   * with a warning; in production it is required unless JWT_JWKS_URL is set, and then HS256 is off.
   */
  JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** How long `enter` waits for the single writer's decision before it answers `QUEUED`. */
  ENTER_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(3000),
  /**
   * The secret proof-of-work challenges are signed with (HMAC, issue 34); every API process of a
   * deployment needs the same one. A development default prints a warning.
   */
  CHALLENGE_SECRET: unsetIfEmpty(z.string().min(16, 'must be at least 16 characters')),
  /**
   * The key the single writer signs line heads with (Ed25519, issue 31): `kid:base64(PKCS#8 DER)`.
   * Each user's nonce in a campaign is an HMAC under a secret derived from it, so keep it for as
   * long as receipts must verify, and give every writer and API process the same one. Its public
   * half is served at `/.well-known/firstcome-fairness.json`. A development default prints a warning.
   */
  FAIRNESS_KEY: unsetIfEmpty(
    z.string().refine((s) => {
      try {
        FairnessKey.parse(s);
        return true;
      } catch {
        return false;
      }
    }, 'expected kid:base64(PKCS#8 DER of an Ed25519 private key)'),
  ),
  /** Prefix of every Kafka topic and group id, so test suites and tenants never collide. */
  TOPIC_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9._-]{1,100}$/)
    .default('firstcome'),
  /** Prefix of every Redis key. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9._:-]{1,64}$/)
    .default('fc'),
  /** Partitions of the campaign-events topic: one active campaign per partition at a time; fixed once the topic exists. */
  EVENT_PARTITIONS: z.coerce.number().int().min(1).max(256).default(6),
  /** Replicas of a topic firstcome creates; unset: as many brokers as answer, at most 3 (min in-sync: 2 where there are 2 or more). */
  KAFKA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(7).optional(),
  /**
   * Codec of the record batches firstcome appends. snappy: docs/design.md (Compression of the log)
   * says why. Readers take every codec whatever this says; a codec whose package does not load
   * here is refused.
   */
  KAFKA_COMPRESSION: z
    .preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() || undefined : v), z.string().default('snappy'))
    .refine((s): s is Compression => (COMPRESSIONS as readonly string[]).includes(s), `expected one of ${COMPRESSIONS.join(', ')}`)
    .transform((s) => s as Compression)
    .superRefine((c, ctx) => {
      const why = unavailable(c);
      if (why) ctx.addIssue({ code: 'custom', message: `${why}; use one of ${COMPRESSIONS.filter((x) => !unavailable(x)).join(', ')}` });
    }),
  /** Group-commit window of the API's appends. */
  APPEND_LINGER_MS: z.coerce.number().int().min(0).max(100).default(3),
  /** How long the single writer's fetch waits on a quiet partition. Formerly `DECIDER_MAX_WAIT_MS`, still read (with a warning) for a release. */
  WRITER_MAX_WAIT_MS: z.coerce.number().int().min(1).max(5000).default(20),
  /**
   * Least time between two commits of a partition's decisions: batches between them are told at
   * once and commit together. 0 commits every batch at once. Formerly `DECIDER_COMMIT_MS`, still
   * read (with a warning) for a release.
   */
  WRITER_COMMIT_MS: z.coerce.number().int().min(0).max(1000).default(100),
  /**
   * Where the API runs too, the single writer runs in a worker thread of its own (0 turns that off).
   * Formerly `DECIDER_THREAD`, still read (with a warning) for a release.
   */
  WRITER_THREAD: z
    .enum(['0', '1', 'true', 'false'])
    .default('1')
    .transform((v) => v === '1' || v === 'true'),
  /** Where the API runs too, the read side (the consumer host and its processors) runs in a worker thread of its own (0 turns that off). */
  READ_SIDE_THREAD: z
    .enum(['0', '1', 'true', 'false'])
    .default('1')
    .transform((v) => v === '1' || v === 'true'),
  /**
   * Requests per second one user may send to `enter` before RATE_LIMITED. A call an API process
   * answers SOLD_OUT from its memory of a sold-out campaign spends none of it.
   */
  ENTER_RATE_PER_SEC: z.coerce.number().int().min(1).default(20),
  /** Redis keys of campaigns closed longer than this are removed by the cleanup job (an INVENTORY campaign's once every winner holds a code). */
  REDIS_RETENTION_HOURS: z.coerce
    .number()
    .min(0)
    .default(24 * 7),
  /** RS256/ES256 tokens whose `kid` is in this JWKS are accepted too. */
  JWT_JWKS_URL: unsetIfEmpty(
    z
      .string()
      .url()
      .refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL'),
  ),
  /** Least time between two fetches of the JWKS (an unknown `kid` asks for one). */
  JWT_JWKS_COOLDOWN_MS: z.coerce.number().int().min(0).default(30_000),
  /** When set, every token (HS256 too) must carry this `iss`. */
  JWT_ISSUER: unsetIfEmpty(z.string()),
  /** When set, every token (HS256 too) must carry an `aud` containing this value. */
  JWT_AUDIENCE: unsetIfEmpty(z.string()),
  /** The longest life a token may have (`exp` − `iat`, or `exp` − now without `iat`); a token with no `exp` is refused. */
  JWT_MAX_AGE_S: z.coerce.number().int().min(60).default(86_400),
  /** Where the admin role is: a claim name or a dotted path (`realm_access.roles`), a string or an array. */
  JWT_ROLE_CLAIM: z.string().min(1).default('role'),
  /**
   * The key ring that wraps each campaign's data key for gifticon codes at rest: `kid:base64(32
   * bytes)`, comma-separated; the first wraps, every one unwraps. Every process needs the same
   * ring. Unset: a development key everyone knows, with a warning (never in production).
   */
  CODE_KEYS: unsetIfEmpty(
    z.string().transform((s, ctx) => {
      try {
        return parseKeyRing(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  ),
  /** The role (in JWT_ROLE_CLAIM) an admin needs, besides `admin`, to see other users' gifticon codes. */
  CODES_READ_ROLE: z.string().min(1).default('codes:read'),
  /** Browser origins allowed to call the API (scheme://host[:port], comma-separated); unset: none. */
  CORS_ORIGINS: unsetIfEmpty(
    z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((o) => o.trim())
          .filter(Boolean),
      )
      .refine((os) => os.every((o) => /^https?:\/\/[^/\s,]+$/.test(o)), 'expected scheme://host[:port][,scheme://host[:port]…]'),
  ),
  /** Requests per second from one client address that carry no valid token; 0 turns the limit off. */
  RATE_LIMIT_IP_PER_SEC: z.coerce.number().int().min(0).default(20),
  /**
   * Every request from one client address, signed in or not, before any of it is parsed (429);
   * far above RATE_LIMIT_IP_PER_SEC, since many people share an address behind carrier NAT or an
   * office proxy. 0 turns it off.
   */
  RATE_LIMIT_IP_CEILING_PER_SEC: z.coerce.number().int().min(0).default(2000),
  /**
   * The cost one signed-in user may spend each second, shared by every API process (429 once
   * spent). A request costs 1, and a document the server parses and validates for the first time
   * one more per GRAPHQL_COST_BYTES of its text. 0 turns it off.
   */
  RATE_LIMIT_USER_COST_PER_SEC: z.coerce.number().int().min(0).default(40),
  /** The same for a token with the admin role (an admin console pages through winners). */
  RATE_LIMIT_ADMIN_COST_PER_SEC: z.coerce.number().int().min(0).default(400),
  /**
   * Bytes of new query text that cost one budget point to parse and validate: the largest query
   * the limits accept (~9 KB, ~15 ms of CPU) costs about two seconds of a user's budget.
   */
  GRAPHQL_COST_BYTES: z.coerce.number().int().min(1).default(100),
  /**
   * `/metrics` and the detail of `/readyz` (names of stores, errors) are served only with this as
   * a bearer token; unset: open. `/readyz`'s status code stays open.
   */
  METRICS_TOKEN: unsetIfEmpty(z.string().min(16, 'must be at least 16 characters')),
  /**
   * Which hops may set X-Forwarded-For (proxy-addr's trust, as Express reads it): a number of
   * proxies in front, or addresses/subnets/`loopback`,`linklocal`,`uniquelocal`; `true` trusts
   * every hop. Unset: the socket's address is the client's.
   */
  TRUST_PROXY: unsetIfEmpty(
    z
      .string()
      .transform((s): true | number | string[] =>
        s === 'true'
          ? true
          : /^\d+$/.test(s)
            ? Number(s)
            : s
                .split(',')
                .map((a) => a.trim())
                .filter(Boolean),
      )
      .refine((t) => {
        if (typeof t !== 'object') return true;
        try {
          proxyaddr.compile(t);
          return true;
        } catch {
          return false;
        }
      }, 'expected a number of hops, true, or addresses/subnets (e.g. loopback,10.0.0.0/8)'),
  ),
  /** Aliases per operation, `__typename` included; more is refused with HTTP 400 before anything runs (docs/api.md). */
  GRAPHQL_MAX_ALIASES: limit(15),
  /** Selection depth, inline fragments counted; deeper is refused with HTTP 400 before anything runs. */
  GRAPHQL_MAX_DEPTH: limit(8),
  /** Lexical tokens of a query; parsing stops there and the query is refused with HTTP 400. */
  GRAPHQL_MAX_TOKENS: limit(1000),
  /** Directives per operation; more is refused with HTTP 400 before anything runs. */
  GRAPHQL_MAX_DIRECTIVES: limit(10),
  /**
   * graphql-armor's cost of an operation (objects 2, scalars 1, ×1.5 per level, × a literal
   * `first`); more is refused with HTTP 400 before anything runs.
   */
  GRAPHQL_MAX_COST: limit(100_000),
  /** Bigger request bodies are answered 413 before they are read to the end. */
  GRAPHQL_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  /** GraphQL subscriptions (graphql-ws): live operations one socket may hold. */
  WS_MAX_SUBSCRIPTIONS_PER_SOCKET: limit(10),
  /** WebSocket connections one client address may hold open at once, counted before `connection_init`. */
  WS_MAX_SOCKETS_PER_ADDRESS: limit(200),
  /** Sockets one user (token `sub`) may hold open at once, counted across every API process (in Redis). */
  WS_MAX_SOCKETS_PER_USER: limit(5),
  /** A socket that holds no subscription for this long is closed (4408). */
  WS_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** Ping interval; a socket that does not answer a ping within it is dropped (0: off). */
  WS_KEEPALIVE_MS: z.coerce.number().int().min(0).default(12_000),
  /**
   * The gifticon provider's API for `PROVIDER` campaigns: `POST {PROVIDER_URL}/vouchers`. The
   * default is where `npm run provider:sim` listens.
   */
  PROVIDER_URL: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL')
    .default('http://127.0.0.1:4390'),
  /** The bearer token sent to the provider. Unset: the development token `npm run provider:sim` accepts, never for a real provider. */
  PROVIDER_TOKEN: unsetIfEmpty(z.string().min(8, 'must be at least 8 characters')),
  /** Provider calls a second at most, retries included (a token bucket in each issuer process). */
  PROVIDER_RATE_PER_SEC: z.coerce.number().int().min(1).max(100_000).default(100),
  /**
   * Provider calls in flight at once per issuer process. To reach the rate it must be at least the
   * rate times the provider's latency in seconds (500/s at 200 ms: 100).
   */
  PROVIDER_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(64),
  /** How long one provider call may take; then it counts as a timeout and is tried again with the same key. */
  PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(5000),
  /** Calls for one voucher before its issuance is given up and parked. */
  PROVIDER_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  /**
   * Time one voucher's calls and the waits between them may take before its issuance is given up
   * and parked. Time queued behind other winners for a slot or a token, or paused behind an open
   * circuit breaker, is not counted.
   */
  PROVIDER_BUDGET_MS: z.coerce.number().int().min(1000).default(60_000),
  /** How long the circuit breaker keeps calls away from a failing provider before a probe call. */
  PROVIDER_BREAKER_OPEN_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
  /**
   * `on`: every process applies pending migrations at start (under an advisory lock). `off`: a
   * release step migrates, and a server whose database is behind refuses to start.
   */
  DB_MIGRATE: z.enum(['on', 'off']).default('on'),
  /** The level of every process's log (pino). */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
