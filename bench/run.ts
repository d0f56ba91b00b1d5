import { randomBytes } from 'node:crypto';
import { DEFAULT_DATABASE_URL } from '../scripts/stack/postgres.js';

/**
 * A bench run's own topics, Redis keys and database on the shared services, named by the bench and a
 * random run id: a projector or writer catching up on an older log would skew what it measures, and
 * the database's name tells its Postgres backends from other users of the server.
 */
export function benchRun(bench: string): {
  run: string;
  database: string;
  env: { TOPIC_PREFIX: string; REDIS_PREFIX: string; DATABASE_URL: string };
} {
  const run = randomBytes(3).toString('hex');
  const database = `fc_bench_${bench}_${run}`;
  const url = new URL(process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
  url.pathname = `/${database}`;
  return {
    run,
    database,
    env: { TOPIC_PREFIX: `bench.${bench}.${run}`, REDIS_PREFIX: `bench:${bench}:${run}`, DATABASE_URL: url.toString() },
  };
}
