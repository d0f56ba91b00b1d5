import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type Isolated } from '../support/app.js';

/** SIGTERM drains in-flight requests, commits and leaves the consumer group cleanly. */
let iso: Isolated;
beforeAll(async () => {
  iso = await isolated('shutdown');
});
afterAll(async () => {
  await iso?.cleanup();
});

describe('SIGTERM', () => {
  it('answers the requests in flight, loses no accepted entry and leaves the group empty', async () => {
    const app = await spawnApp(iso, 'api,decider');
    const admin = await token('boss', 'admin');
    await gql(app.port, admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
      i: { id: 'drain', title: 'Drain', reward: 'Cake', stock: 50, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
    });
    const tokens = await Promise.all(Array.from({ length: 300 }, (_, i) => token(`d${i}`)));
    let sent = 0;
    const answers: ({ ticket: string; user: number } | 'refused' | 'error')[] = [];
    const burst = pool(tokens, 30, async (t, i) => {
      sent++;
      try {
        const r = await gql(app.port, t, `mutation { enter(campaignId: "drain") { entry { ticket } rejection } }`);
        const ticket = r.data?.enter?.entry?.ticket;
        answers.push(ticket ? { ticket, user: i } : r.errors ? 'error' : 'refused');
      } catch {
        answers.push('refused'); // the connection was closed by the draining server: never acknowledged
      }
    });
    while (sent < 100) await new Promise((r) => setTimeout(r, 5));
    const exited = new Promise<number | null>((r) => app.child.once('exit', (code) => r(code)));
    app.child.kill('SIGTERM');
    await burst;
    expect(await exited).toBe(0);

    const accepted = answers.filter((a): a is { ticket: string; user: number } => typeof a === 'object');
    expect(accepted.length).toBeGreaterThan(0);
    const audit = await auditFromLog(iso.config, 'drain');
    for (const a of accepted) expect(audit.state.places.get(`d${a.user}`)?.ticket).toBe(a.ticket);

    const admin2 = new Kafka({ brokers: iso.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin2.connect();
    const { groups } = await admin2.describeGroups([iso.config.groups.writer]);
    await admin2.disconnect();
    expect(groups[0]!.members).toEqual([]);

    // the next decider starts deciding without waiting out a dead member's session
    const again = await spawnApp(iso, 'api,decider');
    try {
      const r = await gql(again.port, await token('after-restart'), `mutation { enter(campaignId: "drain") { entry { status } rejection } }`);
      expect(r.data!.enter.entry?.status ?? r.data!.enter.rejection).toMatch(/WON|LOST|SOLD_OUT/);
    } finally {
      await again.kill();
    }
  });
});
