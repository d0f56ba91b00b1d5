/**
 * Postgres: reuse the server at DATABASE_URL when it answers; otherwise run a private cluster under
 * .stack/pg (initdb + pg_ctl, trust auth). Either way the target database is created if missing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { lock } from './lock.js';
import type { Paths } from './paths.js';
import { isLocal, tcpOpen, type Probe } from './probe.js';
import { alive, readPid, run, stopPid, tail, which, type Stopped } from './process.js';
import { ServiceError, type ServiceResult } from './results.js';

export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/firstcome';

interface PgTarget {
  url: string;
  adminUrl: string;
  host: string;
  port: number;
  user: string;
  database: string;
}

function pgTarget(env: NodeJS.ProcessEnv): PgTarget {
  const url = env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres';
  const admin = new URL(url);
  admin.pathname = '/postgres';
  return {
    url,
    adminUrl: admin.toString(),
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username) || 'postgres',
    database,
  };
}

const PG_DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  '57P03' /* cannot_connect_now: starting up */,
]);

async function pgProbe(t: PgTarget, timeoutMs = 2000): Promise<Probe> {
  const c = new pg.Client({ connectionString: t.adminUrl, connectionTimeoutMillis: timeoutMs });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return { ok: true };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const down = PG_DOWN_CODES.has(err.code ?? '') || /timeout|terminated unexpectedly/i.test(err.message);
    return { ok: false, down, error: err.message };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Create the target database when missing. Returns true when it created it. */
async function ensureDatabase(t: PgTarget): Promise<boolean> {
  if (t.database === 'postgres') return false;
  const c = new pg.Client({ connectionString: t.adminUrl, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const found = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [t.database]);
    if (found.rowCount) return false;
    try {
      await c.query(`CREATE DATABASE ${pg.escapeIdentifier(t.database)}`);
      return true;
    } catch (e) {
      // another process created it at the same moment
      if (['42P04', '23505'].includes((e as { code?: string }).code ?? '')) return false;
      throw e;
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}

function pgBinDirs(): string[] {
  try {
    return fs
      .readdirSync('/usr/lib/postgresql')
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => path.join('/usr/lib/postgresql', v, 'bin'));
  } catch {
    return [];
  }
}

function pgTools(): { initdb: string; pgCtl: string } | undefined {
  const initdb = which('initdb');
  const pgCtl = which('pg_ctl');
  if (initdb && pgCtl) return { initdb, pgCtl };
  for (const dir of pgBinDirs()) {
    const i = path.join(dir, 'initdb');
    const c = path.join(dir, 'pg_ctl');
    if (fs.existsSync(i) && fs.existsSync(c)) return { initdb: i, pgCtl: c };
  }
  return undefined;
}

/** initdb and postgres refuse to run as root: when we are root, run them as the `postgres` OS user. */
function pgRunAs(): { prefix: string[]; uid?: number; gid?: number } {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { prefix: [] };
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  const runuser = which('runuser', ['/usr/sbin', '/sbin']);
  if (id.status !== 0 || !runuser) {
    throw new ServiceError(
      'running as root: initdb/postgres need a non-root OS user named "postgres" (and runuser) to own the private cluster',
    );
  }
  return { prefix: [runuser, '-u', 'postgres', '--'], uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function upPostgres(p: Paths, env: NodeJS.ProcessEnv): Promise<Omit<ServiceResult, 'seconds'>> {
  const t = pgTarget(env);
  const address = `${t.host}:${t.port}`;
  const first = await pgProbe(t);
  if (first.ok) {
    const created = await ensureDatabase(t);
    return { name: 'postgres', status: 'reused', address, detail: created ? `created database ${t.database}` : undefined };
  }
  if (!first.down) throw new ServiceError(`Postgres at ${address} answers but refuses us: ${first.error}`);

  const release = await lock(p.lockFile('postgres'));
  try {
    const again = await pgProbe(t);
    if (again.ok) {
      const created = await ensureDatabase(t);
      return { name: 'postgres', status: 'reused', address, detail: created ? `created database ${t.database}` : undefined };
    }
    if (!isLocal(t.host)) throw new ServiceError(`DATABASE_URL points at ${address}, which does not answer, and is not this machine`);
    const tools = pgTools();
    if (!tools) {
      throw new ServiceError(
        `Postgres does not answer on ${address} and initdb/pg_ctl are not installed: apt-get install postgresql (or set DATABASE_URL)`,
      );
    }
    if (await tcpOpen(t.host, t.port)) throw new ServiceError(`something listens on ${address} but does not answer as Postgres`);
    const as = pgRunAs();
    fs.mkdirSync(p.pgDir, { recursive: true });
    if (as.uid !== undefined) fs.chownSync(p.pgDir, as.uid, as.gid ?? as.uid);
    let detail = '';
    if (!fs.existsSync(path.join(p.pgData, 'PG_VERSION'))) {
      const init = run(
        [...as.prefix, tools.initdb, '-D', p.pgData, '-U', t.user, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
        p.pgDir,
      );
      if (init.status !== 0) throw new ServiceError(`initdb failed:\n${init.output}`);
      detail = 'new cluster in .stack/pg';
    }
    const listen = t.host === 'localhost' ? '127.0.0.1' : t.host;
    const start = run(
      [
        ...as.prefix,
        tools.pgCtl,
        'start',
        '-D',
        p.pgData,
        '-l',
        p.pgLog,
        '-w',
        '-t',
        '60',
        '-o',
        `-p ${t.port} -c listen_addresses=${listen} -k '${p.pgDir}'`,
      ],
      p.pgDir,
    );
    if (start.status !== 0) throw new ServiceError(`pg_ctl start failed:\n${start.output}\n${tail(p.pgLog)}`);
    const pid = readPid(path.join(p.pgData, 'postmaster.pid'));
    fs.writeFileSync(p.pidFile('postgres'), `${pid ?? ''}\n`);
    const deadline = Date.now() + 20_000;
    while (!(await pgProbe(t, 1000)).ok) {
      if (Date.now() > deadline) throw new ServiceError(`Postgres started but does not answer on ${address}:\n${tail(p.pgLog)}`);
      await sleep(200);
    }
    const created = await ensureDatabase(t);
    if (created) detail = [detail, `created database ${t.database}`].filter(Boolean).join(', ');
    return { name: 'postgres', status: 'started', address, pid, detail: detail || undefined };
  } finally {
    release();
  }
}

/** Stop the cluster `up` started with pg_ctl (a signal if pg_ctl fails) and remove its pid file. */
export async function downPostgres(p: Paths): Promise<Stopped> {
  const pidFile = p.pidFile('postgres');
  const pid = readPid(pidFile) ?? readPid(path.join(p.pgData, 'postmaster.pid'));
  const tools = pgTools();
  let status: Stopped['status'] = 'gone';
  if (pid !== undefined && alive(pid)) {
    if (!tools) throw new ServiceError('pg_ctl not found; stop the cluster in .stack/pg/data yourself');
    const res = run([...pgRunAs().prefix, tools.pgCtl, 'stop', '-D', p.pgData, '-m', 'fast', '-w', '-t', '20'], p.pgDir);
    if (res.status !== 0 && alive(pid)) {
      await stopPid(pid, 'postgres', 5000);
    }
    status = 'stopped';
  }
  fs.rmSync(pidFile, { force: true });
  return { status, pid };
}
