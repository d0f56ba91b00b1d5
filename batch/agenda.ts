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
/** the workers alive now: each running worker renews its row every WORKER_BEAT_MS */
export const WORKERS_TABLE = 'agenda_workers';
export const WORKER_BEAT_MS = 2_000;
/** a worker not seen for this long is gone (a SIGKILL leaves its row behind) */
export const WORKER_GONE_MS = 10_000;
/** the advisory lock that serialises the creation of the jobs table across processes */
const SCHEMA_LOCK_KEY = 0x6a6f6273; // 'jobs'

export const JOB_NAMES = ['report', 'replay', 'reconcile', 'cleanup', 'close', 'issue'] as const;
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
      await client.query(
        `CREATE TABLE IF NOT EXISTS "${WORKERS_TABLE}" (name TEXT PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
      );
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
  /** the log this process follows: stamped on the jobs it queues, compared with theirs before it runs one */
  logTag: string | null;
  /** persists a running job's data (its phase), without touching what Agenda manages */
  saveData(id: string, data: unknown): Promise<void>;
  getJob(id: string): Promise<JobParameters | null>;
  /** starts processing the jobs defined so far (Agenda then owns the LISTEN connection) */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Jobs hold positions and campaigns of one log, so each records the log it was queued for (the
 * `identityKey` of src/infra/kafka/logIdentity.ts); a worker following another log fails it for
 * good instead of running it (`JobRuntime`). Jobs queued without one (older builds, the CLIs) run.
 */
export interface LogStamped {
  log?: string;
}

/**
 * An Agenda on its own small pool. `processEvery` matters only to a worker that calls `start()`;
 * with LISTEN/NOTIFY connected (`notify`), a job created anywhere is picked up at once.
 */
export async function openAgenda(
  databaseUrl: string,
  opts: { name: string; processEvery?: string | number; maxConcurrency?: number; poolSize?: number; notify?: boolean; logTag?: string },
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
    logTag: opts.logTag ?? null,
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

/**
 * A worker says it is alive: its row in WORKERS_TABLE, renewed every WORKER_BEAT_MS; `stop` takes
 * it away (a worker killed leaves it to go stale).
 */
export function workerBeat(handle: AgendaHandle, name: string, log: Logger): { stop(): Promise<void> } {
  const beat = () =>
    handle.pool
      .query(`INSERT INTO "${WORKERS_TABLE}" (name, seen_at) VALUES ($1, now()) ON CONFLICT (name) DO UPDATE SET seen_at = now()`, [name])
      .catch((err: unknown) => log.warn({ err }, 'worker heartbeat not written'));
  void beat();
  const timer = setInterval(beat, WORKER_BEAT_MS);
  return {
    async stop() {
      clearInterval(timer);
      await handle.pool.query(`DELETE FROM "${WORKERS_TABLE}" WHERE name = $1`, [name]).catch(() => undefined);
    },
  };
}

/**
 * Jobs left locked by a worker that died, while no worker runs at all, are marked failed with the
 * reason: nothing would resume them, and a job that shows RUNNING with nobody running it keeps an
 * operator (or `npm run replay`) waiting for good. Where any worker is alive it resumes the job once
 * the dead one's lock expires, so nothing is failed then. The ids failed.
 */
export async function failOrphanedJobs(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `UPDATE "${JOBS_TABLE}" SET
       failed_at = now(), last_finished_at = now(), locked_at = NULL, next_run_at = NULL,
       fail_count = COALESCE(fail_count, 0) + 1,
       fail_reason = 'its worker (' || COALESCE(last_modified_by, 'unknown') || ') stopped mid-job, and no worker is running to resume it: start one (npm start -- --roles worker) and run the job again'
     WHERE locked_at IS NOT NULL
       AND locked_at < now() - make_interval(secs => $1)
       AND NOT EXISTS (SELECT 1 FROM "${WORKERS_TABLE}" WHERE seen_at > now() - make_interval(secs => $1))
     RETURNING id`,
    [WORKER_GONE_MS / 1000],
  );
  return rows.map((r) => r.id);
}

/** What reads jobs (the API, the CLI) also ends the ones no worker will finish; see failOrphanedJobs. */
export function watchOrphans(handle: AgendaHandle, log: Logger, everyMs = WORKER_BEAT_MS): { stop(): void } {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    failOrphanedJobs(handle.pool)
      .then(
        (ids) => ids.forEach((id) => log.warn({ job: id }, 'a job whose worker died, with no worker running, is marked failed')),
        () => undefined, // the store is away: the next look tries again
      )
      .finally(() => (busy = false));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
