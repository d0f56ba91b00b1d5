import { z } from 'zod';

/**
 * The one config loader. Every variable of CONTRACT.md has a local default; a bad value stops the
 * process at start with the variable named, never later on the hot path.
 */
const DEV_JWT_SECRET = 'firstcome-development-secret-do-not-use-in-production';

const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
    .refine((bs) => bs.length > 0 && bs.every((b) => /^[^:\s]+:\d+$/.test(b)), 'expected host:port[,host:port…]'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  DATABASE_URL: z
    .string()
    .default('postgresql://postgres@127.0.0.1:5432/firstcome')
    .refine((s) => /^postgres(ql)?:\/\//.test(s), 'expected a postgresql:// URL'),
  EVENTSTORE_URL: z.string().min(1).optional(),
  JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  ENTER_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(3000),
  /** Prefix of every Kafka topic and group id, so test suites and tenants never collide. */
  TOPIC_PREFIX: z.string().regex(/^[a-zA-Z0-9._-]{1,100}$/).default('firstcome'),
  /** Prefix of every Redis key. */
  REDIS_PREFIX: z.string().regex(/^[a-zA-Z0-9._:-]{1,64}$/).default('fc'),
  /** Partitions of the campaign-events topic: one active campaign per partition at a time. */
  EVENT_PARTITIONS: z.coerce.number().int().min(1).max(256).default(6),
  /** Group-commit window of the API's appends. */
  APPEND_LINGER_MS: z.coerce.number().int().min(0).max(100).default(3),
  /** How long the decider's fetch waits on a quiet partition. */
  DECIDER_MAX_WAIT_MS: z.coerce.number().int().min(1).max(5000).default(20),
  /** Where the API runs too, the decider runs in a worker thread of its own (0 turns that off). */
  DECIDER_THREAD: z
    .enum(['0', '1', 'true', 'false'])
    .default('1')
    .transform((v) => v === '1' || v === 'true'),
  /** Requests per second one user may send to `enter` before RATE_LIMITED. */
  ENTER_RATE_PER_SEC: z.coerce.number().int().min(1).default(20),
  /** Redis keys of campaigns closed longer than this are removed by the cleanup job. */
  REDIS_RETENTION_HOURS: z.coerce.number().min(0).default(24 * 7),
  /**
   * `on`: every process applies pending migrations at start (under an advisory lock). `off`: a
   * release step migrates, and a server whose database is behind refuses to start.
   */
  DB_MIGRATE: z.enum(['on', 'off']).default('on'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Omit<z.infer<typeof schema>, 'JWT_SECRET'> & {
  JWT_SECRET: string;
  /** true when JWT_SECRET was left out and the development default is in use */
  jwtSecretIsDefault: boolean;
  topics: { events: string };
  groups: { decider: string; projector: string; archive: string };
};

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  if (!c.JWT_SECRET && c.NODE_ENV === 'production') {
    throw new ConfigError('invalid configuration:\n  JWT_SECRET: required when NODE_ENV=production');
  }
  const p = c.TOPIC_PREFIX;
  return {
    ...c,
    JWT_SECRET: c.JWT_SECRET ?? DEV_JWT_SECRET,
    jwtSecretIsDefault: !c.JWT_SECRET,
    topics: { events: `${p}.campaign-events` },
    groups: { decider: `${p}.decider`, projector: `${p}.projector`, archive: `${p}.eventstore-archive` },
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
