import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * CPU time of the processes on the path of a request, read from /proc (Linux), in milliseconds of
 * user + system time since each process began. Anything unreadable counts as NaN (printed as '-').
 */
export function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime, in clock ticks of 10 ms
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/**
 * The Postgres backends serving one database: PostgreSQL titles each backend
 * `postgres: <cluster>: <user> <database> <client> <state>`, so a database of the bench's own is
 * told from the other users of a shared server by its name.
 */
export function postgresBackends(database: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const title = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (title.startsWith('postgres: ') && title.split(' ').includes(database)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * A database's backends come and go with the connection pools: a sample keeps each one's CPU, and
 * the CPU between two samples is what each backend of the second spent since the first (all of it
 * for a backend born in between). A backend that ended in between is missed.
 */
export type BackendSample = Map<number, number>;
export function sampleBackends(database: string): BackendSample {
  return new Map(postgresBackends(database).map((pid) => [pid, cpuMsOf(pid)]));
}
export function backendsCpuMsBetween(before: BackendSample, after: BackendSample): number {
  let ms = 0;
  for (const [pid, cpu] of after) if (Number.isFinite(cpu)) ms += cpu - (before.get(pid) ?? 0);
  return ms;
}

/** The pid of the Redis server at `url` (INFO server), to read its CPU from /proc. */
export async function redisServerPid(url: string): Promise<number | undefined> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true });
  try {
    await redis.connect();
    const m = /process_id:(\d+)/.exec(await redis.info('server'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

/**
 * The pid of the process listening on a local TCP port (the broker a shared stack started from
 * another checkout, whose pid file this one does not have): the socket's inode in /proc/net/tcp,
 * then the process holding it among its file descriptors.
 */
export function listenerPid(port: number): number | undefined {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local address ip:port, state 0A = LISTEN, inode in column 10
      if (f[1]?.endsWith(`:${hex}`) && f[3] === '0A' && f[9]) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      for (const fd of readdirSync(`/proc/${name}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${name}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(name);
      }
    } catch {
      // not ours to read, or gone
    }
  }
  return undefined;
}
