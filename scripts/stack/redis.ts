/** Redis: reuse the one at REDIS_URL when it answers; otherwise start `redis-server` from PATH, nothing kept on disk. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { lock } from './lock.js';
import type { Paths } from './paths.js';
import { isLocal, tcpOpen, withTimeout, type Probe } from './probe.js';
import { alive, ours, readPid, spawnDetached, stopByPidFile, tail, which, type Stopped } from './process.js';
import { ServiceError, type ServiceResult } from './results.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** What redis-server's command line contains, so a pid is only ever taken for ours. */
const REDIS_PROCESS = 'redis-server';

async function redisProbe(url: string, timeoutMs = 1500): Promise<Probe> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    reconnectOnError: () => false,
  });
  r.on('error', () => undefined);
  try {
    await withTimeout(r.connect(), timeoutMs + 500, 'redis connect');
    const pong = await withTimeout(r.ping(), timeoutMs, 'redis PING');
    return pong === 'PONG' ? { ok: true } : { ok: false, down: false, error: `PING answered ${pong}` };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const down =
      ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(err.code ?? '') ||
      /no answer|Connection is closed|connect ETIMEDOUT/i.test(err.message);
    return { ok: false, down, error: err.message };
  } finally {
    r.disconnect();
  }
}

export async function upRedis(p: Paths, env: NodeJS.ProcessEnv): Promise<Omit<ServiceResult, 'seconds'>> {
  const url = env.REDIS_URL ?? DEFAULT_REDIS_URL;
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(u.port || 6379);
  const address = `${host}:${port}`;
  const first = await redisProbe(url);
  if (first.ok) return { name: 'redis', status: 'reused', address };
  if (!first.down) throw new ServiceError(`Redis at ${address} answers but not as expected: ${first.error}`);

  const release = await lock(p.lockFile('redis'));
  try {
    const pidFile = p.pidFile('redis');
    const prev = readPid(pidFile);
    if (prev !== undefined && !ours(prev, REDIS_PROCESS)) fs.rmSync(pidFile, { force: true });
    if ((await redisProbe(url)).ok) return { name: 'redis', status: 'reused', address };
    if (!isLocal(host)) throw new ServiceError(`REDIS_URL points at ${address}, which does not answer, and is not this machine`);
    if (u.protocol === 'unix:') throw new ServiceError(`REDIS_URL is a unix socket that does not answer: ${url}`);
    const bin = which('redis-server');
    if (!bin) {
      throw new ServiceError(
        `Redis does not answer on ${address} and redis-server is not installed: apt-get install redis-server (or set REDIS_URL)`,
      );
    }
    if (await tcpOpen(host, port)) throw new ServiceError(`something listens on ${address} but does not answer Redis PING`);
    const args = [
      '--port',
      String(port),
      '--bind',
      host === 'localhost' ? '127.0.0.1' : host,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      p.redisDir,
    ];
    if (u.password) args.push('--requirepass', decodeURIComponent(u.password));
    fs.mkdirSync(p.redisDir, { recursive: true });
    const { child, exited } = spawnDetached(bin, args, p.redisLog, p.redisDir);
    const pid = child.pid;
    if (pid === undefined) throw new ServiceError(`could not start ${bin}`);
    fs.writeFileSync(pidFile, `${pid}\n`);
    let dead = false;
    void exited.then(() => (dead = true));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !dead) {
      if ((await redisProbe(url, 500)).ok) return { name: 'redis', status: 'started', address, pid };
      await sleep(100);
    }
    fs.rmSync(pidFile, { force: true });
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    throw new ServiceError(
      `redis-server did not answer on ${address}; last lines of ${path.relative(p.root, p.redisLog)}:\n${tail(p.redisLog)}`,
    );
  } finally {
    release();
  }
}

export function downRedis(p: Paths): Promise<Stopped> {
  return stopByPidFile(p.pidFile('redis'), REDIS_PROCESS);
}
