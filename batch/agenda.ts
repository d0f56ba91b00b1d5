import { getCreateIndexesSQL, getCreateTableSQL, getUpdateTimestampTriggerSQL, PostgresBackend } from '@agendajs/postgres-backend';
import { Agenda, type JobParameters } from 'agenda';
import pg from 'pg';
import type { HealthReporter } from '../src/health.js';
import { pgConfig } from '../src/infra/prisma/database.js';
import type { Logger } from '../src/logger.js';
import { RepeatedErrors } from '../src/retrying.js';

/**
 * Agenda 6 on the Postgres of DATABASE_URL: one queue for the worker role (which processes jobs)
 * and for the API and CLI processes (which only create and read them).
 *
 * Agenda creates `agenda_jobs` itself, but two instances starting at the same moment race on that
 * DDL (FACTS.md). So no instance creates it on connect (`ensureSchema: false`): `ensureJobsTable`
 * creates it under a Postgres advisory lock, and every process calls it before building its Agenda.
 */

export const JOBS_TABLE = 'agenda_jobs';
/** the advisory lock that serialises the creation of the jobs table across processes */
const SCHEMA_LOCK_KEY = 0x6a6f6273; // 'jobs'

export const JOB_NAMES = ['report', 'replay', 'reconcile', 'cleanup', 'close'] as const;
export type JobName = (typeof JOB_NAMES)[number];

export function createJobsPool(databaseUrl: string, max = 4): pg.Pool {
  const pool = new pg.Pool(pgConfig(databaseUrl, { max }));
  // an idle client that errors (server restart) must not take the process down; the next query reconnects
  pool.on('error', () => undefined);
  return pool;
}

export async function ensureJobsTable(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK_KEY]);
    try {
      // once: the trigger's DROP/CREATE would lock the table under running workers on every start
      const { rows } = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [JOBS_TABLE]);
      if (rows[0]?.t) return;
      await client.query(getCreateTableSQL(JOBS_TABLE));
      for (const sql of getCreateIndexesSQL(JOBS_TABLE)) await client.query(sql);
      await client.query(getUpdateTimestampTriggerSQL(JOBS_TABLE));
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}

export interface AgendaHandle {
  agenda: Agenda;
  backend: PostgresBackend;
  pool: pg.Pool;
  /** persists a running job's data (its phase), without touching what Agenda manages */
  saveData(id: string, data: unknown): Promise<void>;
  getJob(id: string): Promise<JobParameters | null>;
  /** starts processing the jobs defined so far (Agenda then owns the LISTEN connection) */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * An Agenda on its own small pool. `processEvery` matters only to a worker that calls `start()`;
 * with LISTEN/NOTIFY connected (`notify`), a job created anywhere is picked up at once.
 */
export async function openAgenda(
  databaseUrl: string,
  opts: { name: string; processEvery?: string | number; maxConcurrency?: number; poolSize?: number; notify?: boolean },
): Promise<AgendaHandle> {
  const pool = createJobsPool(databaseUrl, opts.poolSize ?? 4);
  try {
    await ensureJobsTable(pool);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  const backend = new PostgresBackend({ pool, tableName: JOBS_TABLE, ensureSchema: false });
  const agenda = new Agenda({
    backend,
    name: opts.name,
    processEvery: opts.processEvery ?? '2 seconds',
    maxConcurrency: opts.maxConcurrency ?? 8,
    defaultLockLifetime: 60_000,
  });
  agenda.on('error', () => undefined);
  await agenda.ready;
  // a process that never calls start() still announces the jobs it creates
  if (opts.notify && backend.notificationChannel) await backend.notificationChannel.connect();
  let closed = false;
  return {
    agenda,
    backend,
    pool,
    async saveData(id, data) {
      await pool.query(`UPDATE "${JOBS_TABLE}" SET data = $2::jsonb WHERE id = $1`, [id, JSON.stringify(data)]);
    },
    async getJob(id) {
      if (!UUID.test(id)) return null;
      return agenda.db.getJobById(id);
    },
    async start() {
      // Agenda connects the channel itself on start: a second LISTEN client would never be released
      if (backend.notificationChannel?.state === 'connected') await backend.notificationChannel.disconnect();
      await agenda.start();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (backend.notificationChannel?.state === 'connected') await backend.notificationChannel.disconnect().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}

/**
 * Agenda polls its store every `processEvery` and swallows what fails there (its `error` event):
 * a worker whose jobs table cannot be reached would look idle, not broken. So the worker reads the
 * table through Agenda's own pool as often, and reports failing (with the error) until it answers.
 */
export function watchStore(handle: AgendaHandle, health: HealthReporter, log: Logger, everyMs = 2000): { stop(): void } {
  const repeats = new RepeatedErrors(log, 'warn');
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    handle.pool
      .query(`SELECT 1 FROM "${JOBS_TABLE}" LIMIT 1`)
      .then(
        () => (health.ok(), repeats.recovered('job store answers again')),
        (err: unknown) => (health.failing(err), repeats.error(err, 'job store cannot be read')),
      )
      .finally(() => (busy = false));
  }, everyMs);
  return { stop: () => clearInterval(timer) };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
