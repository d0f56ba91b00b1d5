import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { privateBroker } from '../support/broker.js';
import { waitUntil } from '../support/wait.js';

/**
 * Kafka away when the process starts: it stays up and not ready, says on /readyz what it waits for,
 * and starts its roles once a broker answers (it used to exit).
 */
let broker: Awaited<ReturnType<typeof privateBroker>>;
let iso: Isolated;
let app: AppProcess | undefined;

beforeAll(async () => {
  broker = await privateBroker();
  await broker.stop();
  iso = await isolated('kafka-late', { KAFKA_BROKERS: broker.brokers });
});
afterAll(async () => {
  await app?.kill();
  await iso?.cleanup().catch(() => undefined);
  await broker?.destroy();
});

describe('a start without Kafka', () => {
  it('stays up, not ready, saying it waits for Kafka; then becomes ready and takes an enter once the broker is back', async () => {
    app = await spawnApp(iso, 'api,writer', {}, { until: 'listening' });
    const waiting = await waitUntil(
      async () => {
        const r = await fetch(`http://127.0.0.1:${app!.port}/readyz`);
        return { status: r.status, body: (await r.json()) as { failing?: Record<string, string> } };
      },
      (r) => r.status === 503 && /waiting for Kafka/.test(r.body.failing?.kafka ?? ''),
      { what: '/readyz saying it waits for Kafka', timeoutMs: 60_000 },
    );
    expect(waiting.body.failing!.kafka).toContain(broker.brokers);
    expect(app.child.exitCode).toBeNull();

    await broker.start();
    await waitUntil(
      async () => (await fetch(`http://127.0.0.1:${app!.port}/readyz`)).status,
      (s) => s === 200,
      { what: 'ready once the broker answers', timeoutMs: 90_000, everyMs: 250 },
    );
    const admin = await token('boss', 'admin');
    expect(
      (
        await gql(
          app.port,
          admin,
          `mutation { createCampaign(input: { id: "late", title: "t", reward: "r", stock: 1, closesAt: "2099-01-01T00:00:00Z" }) { id } }`,
        )
      ).errors,
    ).toBeUndefined();
    const r = await gql(app.port, await token('ann'), `mutation { enter(campaignId: "late") { entry { status } } }`);
    expect(r.data?.enter?.entry?.status).toBe('WON');
  });
});
