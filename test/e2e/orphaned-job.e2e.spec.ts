import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/**
 * A job whose only worker is killed mid-job ends FAILED, saying why, within the job's lock lifetime
 * (20 s): nothing would resume it, and it used to show RUNNING for good.
 */
const LOCK_LIFETIME_MS = 20_000;
let iso: Isolated;
let api: AppProcess;
let worker: AppProcess;

beforeAll(async () => {
  iso = await isolated('orphan');
  api = await spawnApp(iso, 'api');
  worker = await spawnApp(iso, 'worker');
});
afterAll(async () => {
  await Promise.all([api?.kill(), worker?.kill()]);
  await iso?.cleanup();
});

describe('a job whose worker died', () => {
  it('with no worker running, is marked FAILED with the reason within the lock lifetime', async () => {
    const admin = await token('boss', 'admin');
    const job = async (id: string) =>
      (await gql(api.port, admin, `query($id: ID!) { job(id: $id) { status error } }`, { id })).data!.job as {
        status: string;
        error: string | null;
      };
    // no writer runs, so the Redis replay waits on the rebuild of its partitions: RUNNING until killed
    const queued = await gql(api.port, admin, `mutation { replay(target: REDIS) { id } }`);
    expect(queued.errors).toBeUndefined();
    const id = queued.data!.replay.id as string;
    await waitUntil(
      () => job(id),
      (j) => j.status === 'RUNNING',
      { what: 'the replay running', timeoutMs: 30_000 },
    );
    await worker.kill('SIGKILL');
    const killedAt = Date.now();
    const ended = await waitUntil(
      () => job(id),
      (j) => j.status !== 'RUNNING',
      { what: 'the job ended', timeoutMs: LOCK_LIFETIME_MS + 5_000, everyMs: 250 },
    );
    const tookMs = Date.now() - killedAt;
    console.log(`the orphaned job ended ${tookMs} ms after its worker was killed: ${ended.status}, ${ended.error}`);
    expect(ended.status).toBe('FAILED');
    expect(ended.error).toMatch(/stopped mid-job, and no worker is running/);
    expect(tookMs).toBeLessThan(LOCK_LIFETIME_MS);
  });
});
