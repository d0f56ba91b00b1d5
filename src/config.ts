import { randomBytes } from 'node:crypto';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';
import { COMPRESSIONS, unavailable, type Compression } from './infra/kafka/compression.js';

/**
 * The one config loader. Every variable of CONTRACT.md has a local default; a bad value stops the
 * process at start with the variable named, never later on the hot path.
 */
const DEV_JWT_SECRET = 'firstcome-development-secret-do-not-use-in-production';
const DEV_CHALLENGE_SECRET = 'firstcome-development-challenge-secret-do-not-use-in-production';

/** An optional variable: left out or empty means unset. */
const unsetIfEmpty = <T extends z.ZodType>(t: T) => z.preprocess((v) => (v === '' ? undefined : v), t.optional());
const limit = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
    .refine((bs) => bs.length > 0 && bs.every((b) => /^[^:\s]+:\d+$/.test(b)), 'expected host:port[,host:port…]'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Seed nodes of a Redis Cluster; when set, every Redis use goes to the cluster and REDIS_URL is not used. */
  REDIS_CLUSTER_NODES: unsetIfEmpty(
    z
      .string()
      .transform((s) => s.split(',').map((n) => n.trim()).filter(Boolean))
      .refine((ns) => ns.length > 0 && ns.every((n) => /^(\[[0-9a-fA-F:.]+\]|[^:\s,[\]]+):\d{1,5}$/.test(n) && Number(n.split(':').pop()) <= 65535), 'expected host:port[,host:port…]'),
  ),
  DATABASE_URL: z
    .string()
    .default('postgresql://postgres@127.0.0.1:5432/firstcome')
    .refine((s) => /^postgres(ql)?:\/\//.test(s), 'expected a postgresql:// URL'),
  EVENTSTORE_URL: z.string().min(1).optional(),
  JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  ENTER_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(3000),
  /**
   * The secret proof-of-work challenges are signed with (HMAC, issue 34); every API process of a
   * deployment needs the same one. A development default prints a warning.
   */
  CHALLENGE_SECRET: unsetIfEmpty(z.string().min(16, 'must be at least 16 characters')),
  /** Prefix of every Kafka topic and group id, so test suites and tenants never collide. */
  TOPIC_PREFIX: z.string().regex(/^[a-zA-Z0-9._-]{1,100}$/).default('firstcome'),
  /** Prefix of every Redis key. */
  REDIS_PREFIX: z.string().regex(/^[a-zA-Z0-9._:-]{1,64}$/).default('fc'),
  /** Partitions of the campaign-events topic: one active campaign per partition at a time. */
  EVENT_PARTITIONS: z.coerce.number().int().min(1).max(256).default(6),
  /** Replicas of a topic firstcome creates; unset: as many brokers as answer, at most 3 (min in-sync: 2 where there are 2 or more). */
  KAFKA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(7).optional(),
  /**
   * Codec of the record batches firstcome appends. snappy: README, Configuration (Compression of the
   * log) says why. Readers take every codec whatever this says; a codec whose package does not load
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
  /** How long the decider's fetch waits on a quiet partition. */
  DECIDER_MAX_WAIT_MS: z.coerce.number().int().min(1).max(5000).default(20),
  /** Least time between two commits of a partition's decisions: batches between them are told at once and commit together. */
  DECIDER_COMMIT_MS: z.coerce.number().int().min(0).max(1000).default(100),
  /** Where the API runs too, the decider runs in a worker thread of its own (0 turns that off). */
  DECIDER_THREAD: z
    .enum(['0', '1', 'true', 'false'])
    .default('1')
    .transform((v) => v === '1' || v === 'true'),
  /** Where the API runs too, the read side (the consumer host and its processors) runs in a worker thread of its own (0 turns that off). */
  READ_SIDE_THREAD: z
    .enum(['0', '1', 'true', 'false'])
    .default('1')
    .transform((v) => v === '1' || v === 'true'),
  /** Requests per second one user may send to `enter` before RATE_LIMITED. */
  ENTER_RATE_PER_SEC: z.coerce.number().int().min(1).default(20),
  /** Redis keys of campaigns closed longer than this are removed by the cleanup job. */
  REDIS_RETENTION_HOURS: z.coerce.number().min(0).default(24 * 7),
  /** RS256/ES256 tokens whose `kid` is in this JWKS are accepted too. */
  JWT_JWKS_URL: unsetIfEmpty(z.string().url().refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL')),
  /** Least time between two fetches of the JWKS (an unknown `kid` asks for one). */
  JWT_JWKS_COOLDOWN_MS: z.coerce.number().int().min(0).default(30_000),
  JWT_ISSUER: unsetIfEmpty(z.string()),
  JWT_AUDIENCE: unsetIfEmpty(z.string()),
  /** Where the admin role is: a claim name or a dotted path (`realm_access.roles`), a string or an array. */
  JWT_ROLE_CLAIM: z.string().min(1).default('role'),
  /** Browser origins allowed to call the API (scheme://host[:port], comma-separated); unset: none. */
  CORS_ORIGINS: unsetIfEmpty(
    z
      .string()
      .transform((s) => s.split(',').map((o) => o.trim()).filter(Boolean))
      .refine((os) => os.every((o) => /^https?:\/\/[^/\s,]+$/.test(o)), 'expected scheme://host[:port][,scheme://host[:port]…]'),
  ),
  /** Requests per second from one client address that carry no valid token; 0 turns the limit off. */
  RATE_LIMIT_IP_PER_SEC: z.coerce.number().int().min(0).default(20),
  /**
   * Which hops may set X-Forwarded-For (proxy-addr's trust, as Express reads it): a number of
   * proxies in front, or addresses/subnets/`loopback`,`linklocal`,`uniquelocal`; `true` trusts
   * every hop. Unset: the socket's address is the client's.
   */
  TRUST_PROXY: unsetIfEmpty(
    z
      .string()
      .transform((s): true | number | string[] => (s === 'true' ? true : /^\d+$/.test(s) ? Number(s) : s.split(',').map((a) => a.trim()).filter(Boolean)))
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
  /** Query limits, each refused with HTTP 400 before anything runs (README: Query limits). */
  GRAPHQL_MAX_ALIASES: limit(15),
  GRAPHQL_MAX_DEPTH: limit(8),
  GRAPHQL_MAX_TOKENS: limit(1000),
  GRAPHQL_MAX_DIRECTIVES: limit(10),
  GRAPHQL_MAX_COST: limit(100_000),
  /** Bigger request bodies are answered 413 before they are read to the end. */
  GRAPHQL_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(64 * 1024),
  /** GraphQL subscriptions (graphql-ws): live operations one socket may hold. */
  WS_MAX_SUBSCRIPTIONS_PER_SOCKET: limit(10),
  /** Sockets one user (token `sub`) may hold open at once on one API process. */
  WS_MAX_SOCKETS_PER_USER: limit(5),
  /** A socket that holds no subscription for this long is closed (4408). */
  WS_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** Ping interval; a socket that does not answer a ping within it is dropped (0: off). */
  WS_KEEPALIVE_MS: z.coerce.number().int().min(0).default(12_000),
  /**
   * `on`: every process applies pending migrations at start (under an advisory lock). `off`: a
   * release step migrates, and a server whose database is behind refuses to start.
   */
  DB_MIGRATE: z.enum(['on', 'off']).default('on'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Omit<z.infer<typeof schema>, 'JWT_SECRET' | 'CHALLENGE_SECRET'> & {
  JWT_SECRET: string;
  CHALLENGE_SECRET: string;
  /** true when CHALLENGE_SECRET was left out and the development default is in use */
  challengeSecretIsDefault: boolean;
  /** true when JWT_SECRET was left out and the development default is in use */
  jwtSecretIsDefault: boolean;
  /** HS256 tokens are accepted: always, except in production with a JWKS and no JWT_SECRET */
  jwtHs256: boolean;
  /** events: the store of record; parked: records a consumer could not use (the dead-letter topic) */
  topics: { events: string; parked: string };
  /**
   * consumer groups; the single writer's keeps its first name (`.decider`) so a running log keeps its
   * offsets. `readSide` is the stem of the consumer hosts' groups (`<stem>.<processors>`, see `readSideGroup`).
   */
  groups: { writer: string; readSide: string };
};

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  const production = c.NODE_ENV === 'production';
  if (!c.JWT_SECRET && production && !c.JWT_JWKS_URL) {
    throw new ConfigError('invalid configuration:\n  JWT_SECRET: required when NODE_ENV=production (unless JWT_JWKS_URL is set)');
  }
  const jwtHs256 = Boolean(c.JWT_SECRET) || !production;
  const p = c.TOPIC_PREFIX;
  return {
    ...c,
    // HS256 off: a secret nobody knows stands in, so nothing signed with a guess can pass
    JWT_SECRET: c.JWT_SECRET ?? (jwtHs256 ? DEV_JWT_SECRET : randomBytes(32).toString('hex')),
    jwtSecretIsDefault: !c.JWT_SECRET && jwtHs256,
    CHALLENGE_SECRET: c.CHALLENGE_SECRET ?? DEV_CHALLENGE_SECRET,
    challengeSecretIsDefault: !c.CHALLENGE_SECRET,
    jwtHs256,
    topics: { events: `${p}.campaign-events`, parked: `${p}.parked` },
    groups: { writer: `${p}.decider`, readSide: `${p}.read-side` },
  };
}

/** For entry points: the config, or the problem printed and exit code 2. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}
