import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { DEV_CODE_KEYS, parseKeyRing, type KeyRing } from './infra/codeKeys/keyRing.js';
import { schema } from './configSchema.js';

/**
 * The one config loader. Every variable has a local default; a bad value stops the process at
 * start with the variable named, never later on the hot path. docs/configuration.md lists them.
 */
const DEV_JWT_SECRET = 'firstcome-development-secret-do-not-use-in-production';
const DEV_CHALLENGE_SECRET = 'firstcome-development-challenge-secret-do-not-use-in-production';
/** A published development key: heads signed with it prove nothing (its private half is in this file). */
const DEV_FAIRNESS_KEY = 'dev-1:MC4CAQAwBQYDK2VwBCIEIHMUBnGS0Qyt/4z2pQSZPjcEpQ1/mcCfBYmj0G/P87Q9';
/** What `npm run provider:sim` accepts unless told otherwise. */
export const DEV_PROVIDER_TOKEN = 'firstcome-provider-simulator-token';

export type Config = Omit<z.infer<typeof schema>, 'JWT_SECRET' | 'CHALLENGE_SECRET' | 'FAIRNESS_KEY' | 'PROVIDER_TOKEN' | 'CODE_KEYS'> & {
  JWT_SECRET: string;
  CODE_KEYS: KeyRing;
  /** true when CODE_KEYS was left out and the development key ring is in use */
  codeKeysAreDefault: boolean;
  CHALLENGE_SECRET: string;
  FAIRNESS_KEY: string;
  /** true when FAIRNESS_KEY was left out and the published development key signs heads */
  fairnessKeyIsDefault: boolean;
  PROVIDER_TOKEN: string;
  /** true when PROVIDER_TOKEN was left out and the simulator's development token is in use */
  providerTokenIsDefault: boolean;
  /** true when CHALLENGE_SECRET was left out and the development default is in use */
  challengeSecretIsDefault: boolean;
  /** true when JWT_SECRET was left out and the development default is in use */
  jwtSecretIsDefault: boolean;
  /** HS256 tokens are accepted: always, except in production with a JWKS and no JWT_SECRET */
  jwtHs256: boolean;
  /** a warning per setting given under its old name (`RENAMED_SETTINGS`) */
  renamed: string[];
  /** events: the store of record; parked: records a consumer could not use (the dead-letter topic) */
  topics: { events: string; parked: string };
  /**
   * consumer groups; the single writer's keeps its first name (`.decider`) so a running log keeps its
   * offsets. `readSide` is the stem of the consumer hosts' groups (`<stem>.<processors>`, see `readSideGroup`).
   * `issuer`: the issuer role's group, and the stem of its transactional ids.
   */
  groups: { writer: string; readSide: string; issuer: string };
};

export class ConfigError extends Error {}

/** Settings renamed, old name → new: the old name is still read, with a warning (`renamed`), for a release. */
export const RENAMED_SETTINGS: Readonly<Record<string, string>> = {
  DECIDER_MAX_WAIT_MS: 'WRITER_MAX_WAIT_MS',
  DECIDER_COMMIT_MS: 'WRITER_COMMIT_MS',
  DECIDER_THREAD: 'WRITER_THREAD',
};

/** `env` with each old name's value under its new name, where the new one is not set; and a warning per old name met. */
function takeRenamed(env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; renamed: string[]; givenAs: Record<string, string> } {
  const out = { ...env };
  const renamed: string[] = [];
  const givenAs: Record<string, string> = {};
  for (const [old, now] of Object.entries(RENAMED_SETTINGS)) {
    if (env[old] === undefined) continue;
    if (env[now] === undefined) {
      out[now] = env[old];
      givenAs[now] = old;
      renamed.push(`${old} is now called ${now}; the old name will be refused in a later release`);
    } else renamed.push(`${old} is ignored: ${now} is set too (${old} is its old name, refused in a later release)`);
  }
  return { env: out, renamed, givenAs };
}

export function loadConfig(given: NodeJS.ProcessEnv = process.env): Config {
  const { env, renamed, givenAs } = takeRenamed(given);
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const named = (key: string) => (givenAs[key] ? `${key} (given as ${givenAs[key]})` : key);
    const lines = parsed.error.issues.map((i) => `  ${named(i.path.join('.'))}: ${i.message}`);
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
    FAIRNESS_KEY: c.FAIRNESS_KEY ?? DEV_FAIRNESS_KEY,
    fairnessKeyIsDefault: !c.FAIRNESS_KEY,
    PROVIDER_TOKEN: c.PROVIDER_TOKEN ?? DEV_PROVIDER_TOKEN,
    providerTokenIsDefault: !c.PROVIDER_TOKEN,
    CODE_KEYS: c.CODE_KEYS ?? parseKeyRing(DEV_CODE_KEYS),
    codeKeysAreDefault: !c.CODE_KEYS,
    jwtHs256,
    renamed,
    topics: { events: `${p}.campaign-events`, parked: `${p}.parked` },
    groups: { writer: `${p}.decider`, readSide: `${p}.read-side`, issuer: `${p}.issuer` },
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
