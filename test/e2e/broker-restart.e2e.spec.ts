import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { privateBroker } from '../support/broker.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/** I4: every entry that `enter` returned survives a SIGKILLed broker and a SIGKILLed API process. */
let broker: Awaited<ReturnType<typeof privateBroker>>;
let iso: Isolated;
let writer: AppProcess;

beforeAll(async () => {
  broker = await privateBroker();
  iso = await isolated('broker', { KAFKA_BROKERS: broker.brokers, ENTER_WAIT_MS: '1000' });
  writer = await spawnApp(iso, 'writer');
});
afterAll(async () => {
  await writer?.kill();
  await iso?.cleanup().catch(() => undefined);
  await broker?.destroy();
});

describe('I4: what enter returned survives', () => {
  it('a broker killed with SIGKILL mid-burst and restarted, and an API process killed with SIGKILL', async () => {
    const api = await spawnApp(iso, 'api');
    const admin = await token('boss', 'admin');
    const created = await gql(api.port, admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
      i: { id: 'survive', title: 'Survive', reward: 'Cake', stock: 250, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
    });
    expect(created.errors).toBeUndefined();
    const tokens = await Promise.all(Array.from({ length: 300 }, (_, i) => token(`s${i}`)));
    const accepted = new Map<number, string>();
    let failed = 0;
    let failedSinceKill = 0;
    let killed = false;
    let done = 0;
    let restarted: Promise<void> | null = null;
    await pool(tokens, 16, async (t, i) => {
      const r = await gql(api.port, t, `mutation { enter(campaignId: "survive") { entry { ticket } rejection } }`).catch(() => null);
      const ticket = r?.data?.enter?.entry?.ticket;
      if (ticket) accepted.set(i, ticket);
      else if (!r?.data?.enter?.rejection) {
        failed++;
        if (killed) failedSinceKill++;
        // while the broker is away nothing is acknowledged, and the answer says to retry
        expect(r?.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
      }
      if (++done === 80) {
        broker.kill();
        killed = true;
        // the outage lasts until callers have felt it (an answer to retry), not a fixed time
        restarted = waitUntil(
          async () => failedSinceKill,
          (n) => n > 0,
          { what: 'a call answered UNAVAILABLE while the broker is away', timeoutMs: 60_000 },
        ).then(() => broker.start());
      }
    });
    await restarted;
    // then the API process dies without a goodbye: what it acknowledged is in the log already
    await api.kill('SIGKILL');

    expect(accepted.size).toBeGreaterThan(80);
    const audit = await waitUntil(
      () => auditFromLog(iso.config, 'survive'),
      (a) => a.winners >= 250,
      { what: 'every unit of stock won', timeoutMs: 60_000 },
    ).catch(() => auditFromLog(iso.config, 'survive'));
    const missing = [...accepted].filter(([user, ticket]) => audit.state.places.get(`s${user}`)?.ticket !== ticket);
    if (audit.winners < 250 || missing.length > 0) {
      // what a failure needs to be understood: the log as read, and the writer's own account
      const counts: Record<string, number> = {};
      for (const l of audit.log) counts[l.event.type] = (counts[l.event.type] ?? 0) + 1;
      console.log('broker SIGKILL failure', {
        accepted: accepted.size,
        failed,
        entrants: audit.entrants,
        winners: audit.winners,
        counts,
        lastOffset: String(audit.log.at(-1)?.offset),
        missing: missing.slice(0, 10).map(([u, t]) => ({
          user: `s${u}`,
          answered: t,
          log: audit.log.filter((l) => 'userId' in l.event && l.event.userId === `s${u}`).map((l) => `${l.event.type}@${l.offset}`),
        })),
      });
      console.log('--- writer ---\n' + writer.output().slice(-8000));
      console.log('--- api ---\n' + api.output().slice(-8000));
    }
    expect(audit.problems).toEqual([]);
    for (const [user, ticket] of accepted) expect(audit.state.places.get(`s${user}`)?.ticket, `user s${user}`).toBe(ticket);
    console.log(`broker SIGKILL: ${accepted.size} entries acknowledged and found in the log, ${failed} calls failed retryably`);

    // a fresh API process answers every acknowledged user with the entry the log holds
    const api2 = await spawnApp(iso, 'api');
    try {
      for (const [user] of [...accepted].slice(0, 60)) {
        const r = await gql(api2.port, tokens[user]!, `{ myEntry(campaignId: "survive") { ticket position } }`);
        expect(r.data!.myEntry).toMatchObject({
          ticket: audit.state.places.get(`s${user}`)!.ticket,
          position: audit.state.places.get(`s${user}`)!.position,
        });
      }
    } finally {
      await api2.kill();
    }
  });
});
