import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, readPid } from './process.js';
import { ServiceError } from './results.js';

/**
 * A per-service lock so two `up`s at once don't both start a server (or both run Maven).
 * Returns a release function. A lock whose holder is dead is taken over.
 */
export async function lock(file: string, timeoutMs = 180_000): Promise<() => void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = readPid(file);
      if (holder === undefined || !alive(holder)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new ServiceError(`${file} is held by pid ${holder}`);
      await sleep(250);
    }
  }
}
