import { connect } from 'node:net';
import { Redis } from 'ioredis';
import type { Config } from '../../src/config.js';
import { Keys } from '../../projections/redis-ordering/index.js';

/** Every key of the suite's REDIS_PREFIX, in one command: as sudden as a flush (never FLUSHALL: other suites share the server). */
export async function loseRedis(config: Pick<Config, 'REDIS_URL' | 'REDIS_PREFIX'>): Promise<number> {
  const redis = new Redis(config.REDIS_URL);
  try {
    const keys = await redis.keys(new Keys(config.REDIS_PREFIX).all());
    return keys.length ? await redis.del(...keys) : 0;
  } finally {
    redis.disconnect();
  }
}

/** One of MONITOR's quoted arguments, unescaped as Redis's sdscatrepr escapes it. */
const unquote = (s: string) =>
  s.replace(/\\(x[0-9a-f]{2}|.)/g, (_m, e: string) =>
    e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : ({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' }[e] ?? e),
  );

/**
 * MONITOR on a socket of its own: every command Redis runs, with its source (`lua` for a script's
 * own calls, else the client's address). Not ioredis's `monitor()`: on a busy server it can read a
 * monitored line as the reply to MONITOR and fail with "Command queue state error" (redis/ioredis#1981).
 * Resolves once Redis said OK; the returned function closes it.
 */
export async function monitorRedis(url: string, onCommand: (args: string[], source: string) => void): Promise<() => void> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port || 6379), hostname);
  let rest = '';
  let ok: () => void;
  const started = new Promise<void>((resolve, reject) => {
    ok = resolve;
    socket.once('error', reject);
  });
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\r\n');
    rest = lines.pop()!;
    for (const line of lines) {
      if (line === '+OK') ok();
      const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
      if (m)
        onCommand(
          [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => unquote(a[1]!)),
          m[1]!,
        );
    }
  });
  socket.write('MONITOR\r\n');
  await started;
  return () => socket.destroy();
}
