import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIM_TOKEN } from '../../src/provider-sim/server.js';
import { elapse, waitUntil } from '../support/wait.js';

/**
 * `npm run provider:sim` as a user runs it: a child process on a port it picks, driven over HTTP
 * with its contract's flags.
 */

let child: ChildProcess;
let base: string;
let output = '';

beforeAll(async () => {
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/providerSim.ts',
      '--port',
      '0',
      '--latency-ms',
      '0',
      '--rate',
      '3',
      '--error-rate',
      '0',
      '--timeout-rate',
      '0',
      '--permanent-rate',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const line = await waitUntil(
    async () => /provider simulator on (http:\/\/127\.0\.0\.1:\d+)/.exec(output),
    (m) => m !== null,
    { what: 'the simulator listening', timeoutMs: 30_000 },
  );
  base = line![1]!;
});

afterAll(async () => {
  if (child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SIM_TOKEN}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  });
const order = { product: 'chicken-10000', recipient: 'alice', campaignId: 'sim-cli' };
const stats = async () => (await (await fetch(`${base}/stats`)).json()) as Record<string, number>;
const faults = (f: Record<string, unknown>) => post('/admin/faults', f);

describe('npm run provider:sim', () => {
  it('issues one voucher per idempotency key and counts it in GET /stats', async () => {
    const a = await post('/vouchers', order, { 'idempotency-key': 'k-1' });
    const b = await post('/vouchers', order, { 'idempotency-key': 'k-1' });
    expect([a.status, b.status]).toEqual([201, 200]);
    const [va, vb] = [await a.json(), await b.json()];
    expect(va).toEqual(vb);
    expect(va).toMatchObject({ voucherId: expect.any(String), code: expect.any(String), expiresAt: expect.any(String) });
    expect(await stats()).toMatchObject({ issued: 1, keys: 1, doubles: 0 });
  });

  it('refuses a missing token, a missing key and a bad body with a 4xx', async () => {
    expect((await post('/vouchers', order, { authorization: 'Bearer nope', 'idempotency-key': 'k-x' })).status).toBe(401);
    expect((await post('/vouchers', order)).status).toBe(400);
    expect((await post('/vouchers', { product: 'p' }, { 'idempotency-key': 'k-y' })).status).toBe(400);
  });

  it('answers 429 with Retry-After beyond --rate', async () => {
    const answers = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => post('/vouchers', order, { 'idempotency-key': `rate-${i}` })));
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(3);
    expect(limited.every((r) => Number(r.headers.get('retry-after')) >= 1)).toBe(true);
  });

  it('a timeout after issuing stores the voucher, and the same key gets it back later', async () => {
    await faults({ rate: 0, timeoutRate: 1 });
    const before = (await stats()).issued!;
    const lost = await post('/vouchers', order, { 'idempotency-key': 'lost-answer' }, AbortSignal.timeout(500)).then(
      () => 'answered',
      (e: Error) => e.name,
    );
    expect(lost).toBe('TimeoutError');
    expect((await stats()).issued).toBe(before + 1);

    await faults({ timeoutRate: 0 });
    const again = await post('/vouchers', order, { 'idempotency-key': 'lost-answer' });
    expect(again.status).toBe(200);
    expect((await stats()).issued).toBe(before + 1);
  });

  it('a second request with a key still being worked on is answered 409', async () => {
    await faults({ latencyMs: 300 });
    const [a, b] = await Promise.all([
      post('/vouchers', order, { 'idempotency-key': 'racing' }),
      elapse(50, 'the second request arrives while the first is being worked on').then(() =>
        post('/vouchers', order, { 'idempotency-key': 'racing' }),
      ),
    ]);
    expect([a.status, b.status]).toEqual([201, 409]);
    await faults({ latencyMs: 0 });
  });

  it('goes down and comes back through POST /admin/faults', async () => {
    expect((await faults({ down: true })).status).toBe(200);
    expect((await post('/vouchers', order, { 'idempotency-key': 'outage' })).status).toBe(503);
    await faults({ down: false });
    expect((await post('/vouchers', order, { 'idempotency-key': 'outage' })).status).toBe(201);
    expect((await post('/admin/faults', { down: true }, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await faults({ errorRate: 2 })).status).toBe(400);
  });

  it('stops on SIGTERM with a summary', async () => {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(output).toMatch(/stopped: \d+ vouchers issued to \d+ keys, 0 doubles/);
  });
});
