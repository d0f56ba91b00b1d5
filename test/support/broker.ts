import { mkdtempSync, rmSync, symlinkSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StackError, stackDown, stackUp } from '../../scripts/stack.js';
import { freePort } from './app.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A Kafka broker of a test's own (same jars as the stack, its own port and log dir), for tests that
 * stop or kill the broker without disturbing the suites that share the main one.
 */
export async function privateBroker() {
  const root = mkdtempSync(path.join(tmpdir(), 'fc-broker-'));
  symlinkSync(path.join(ROOT, '.cache'), path.join(root, '.cache'));
  mkdirSync(path.join(root, 'scripts'));
  symlinkSync(path.join(ROOT, 'scripts', 'kafka'), path.join(root, 'scripts', 'kafka'));
  let port = await freePort();
  while (port > 65000 || !(await isFree(port + 1))) port = await freePort();
  const brokers = `127.0.0.1:${port}`;
  const env = { ...process.env, KAFKA_BROKERS: brokers };
  const up = async () => {
    const [r] = await stackUp({ root, env, services: ['kafka'] }).catch((err: unknown) => {
      // say why: a StackError carries each service's detail (the broker's last log lines)
      throw new Error(`private broker: ${err instanceof StackError ? err.results.map((x) => x.detail).join('\n') : String(err)}`, {
        cause: err,
      });
    });
    if (r!.status === 'failed') throw new Error(`private broker: ${r!.detail}`);
  };
  await up();
  return {
    brokers,
    start: up,
    /** SIGKILL: nothing flushed, nothing said goodbye */
    kill() {
      const pid = Number(readFileSync(path.join(root, '.stack', 'kafka.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
    },
    async stop() {
      await stackDown({ root, services: ['kafka'] });
    },
    async destroy() {
      await stackDown({ root, services: ['kafka'] }).catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function isFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
