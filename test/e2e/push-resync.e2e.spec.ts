import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { collect, liveSocket, type LiveSocket, type Stream } from '../support/live.js';
import { elapse, waitUntil } from '../support/wait.js';

/**
 * Pushes across a Redis outage, on a Redis of the test's own (the shared one serves other suites):
 * while the writer decides, the API's subscriber connection is cut again and again, so the
 * notices of those moments are lost. Each socket's subscriptions then send their state once, and
 * every QUEUED watcher hears its decision and its code.
 */
const USERS = 30;
const STOCK = 20;
const ENTRY = `subscription($c: ID!) { myEntry(campaignId: $c) { userId status position gifticon { code } } }`;
type Entry = { userId: string; status: string; position: number | null; gifticon: { code: string } | null } | null;

let redisServer: ChildProcess;
let redisPort: number;
let iso: Isolated;
let api: AppProcess;
let writer: AppProcess;
const sockets: LiveSocket[] = [];

beforeAll(async () => {
  redisPort = await freePort();
  redisServer = spawn('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const probe = new Redis(redisPort, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
  probe.on('error', () => undefined);
  await waitUntil(
    () =>
      probe.ping().then(
        () => true,
        () => false,
      ),
    Boolean,
    { what: 'the private Redis', timeoutMs: 10_000 },
  );
  probe.disconnect();
  iso = await isolated('push-resync', { REDIS_URL: `redis://127.0.0.1:${redisPort}`, ENTER_WAIT_MS: '200' });
  api = await spawnApp(iso, 'api');
  writer = await spawnApp(iso, 'writer');
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.dispose().catch(() => undefined)));
  writer?.child.kill('SIGCONT');
  await Promise.all([api?.kill(), writer?.kill()]);
  await iso?.cleanup().catch(() => undefined);
  redisServer?.kill('SIGKILL');
  if (redisServer) await once(redisServer, 'exit').catch(() => undefined);
});

describe('pushes across a Redis outage', () => {
  it('every QUEUED watcher hears its decision and its code, though the notices were lost', async () => {
    const admin = await token('boss', 'admin');
    expect(
      (
        await gql(
          api.port,
          admin,
          `mutation { createCampaign(input: { id: "resync", title: "t", reward: "r", stock: ${STOCK}, closesAt: "2099-01-01T00:00:00Z" }) { id } }`,
        )
      ).errors,
    ).toBeUndefined();
    // the writer stops deciding: every enter answers QUEUED
    writer.child.kill('SIGSTOP');
    const tokens = await Promise.all(Array.from({ length: USERS }, (_, i) => token(`u${i}`)));
    const answers = await Promise.all(tokens.map((t) => gql(api.port, t, `mutation { enter(campaignId: "resync") { entry { status } } }`)));
    expect(answers.every((a) => a.data?.enter?.entry?.status === 'QUEUED')).toBe(true);
    const streams: Stream<Entry>[] = tokens.map((t) => {
      const s = liveSocket(api.port, t);
      sockets.push(s);
      return collect<Entry>(s, ENTRY, { c: 'resync' });
    });
    await Promise.all(streams.map((s) => s.until((v) => v?.status === 'QUEUED')));

    // the writer decides while the API's subscriber is cut, over and over: notices are published into the gaps
    const cutter = new Redis(redisPort);
    let cuts = 0;
    writer.child.kill('SIGCONT');
    const end = Date.now() + 3_000;
    while (Date.now() < end) {
      cuts += Number(await cutter.client('KILL', 'TYPE', 'pubsub'));
      await elapse(20, 'between two cuts of the subscriber: notices are published into the gaps');
    }
    cutter.disconnect();
    console.log(`subscriber connections cut ${cuts} times while the writer decided`);
    expect(cuts).toBeGreaterThan(0);

    const decided = (v: Entry) => v !== null && (v.status === 'LOST' || (v.status === 'WON' && v.gifticon !== null));
    await Promise.all(streams.map((s) => s.until(decided, 60_000)));
    const last = streams.map((s) => s.values.at(-1)!);
    expect(last.filter((v) => v!.status === 'WON')).toHaveLength(STOCK);
    expect(last.filter((v) => v!.status === 'LOST')).toHaveLength(USERS - STOCK);
  });
});
