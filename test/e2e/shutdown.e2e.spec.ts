import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type Isolated } from '../support/app.js';
import { decidedEntry, waitUntil } from '../support/wait.js';

/** SIGTERM drains in-flight requests, commits and leaves the consumer group cleanly. */
let iso: Isolated;
beforeAll(async () => {
  iso = await isolated('shutdown');
});
afterAll(async () => {
  await iso?.cleanup();
});

/**
 * What a caller saw. `refused`: no connection (the server had stopped listening); `unavailable`:
 * the draining server's 503 on a kept-alive connection; `dropped`: the connection closed without
 * an answer; `error`: any other GraphQL error.
 */
type Answer = { ticket: string } | 'refused' | 'unavailable' | 'dropped' | { error: string };

function failureOf(err: unknown): Answer {
  const code = (err as { cause?: { code?: string } }).cause?.code;
  return code === 'ECONNREFUSED' ? 'refused' : 'dropped';
}

// more stock than callers: the gate can never answer SOLD_OUT, so every entry needs a writer
const STOCK = 1_000;
const USERS = 300;

describe('SIGTERM', () => {
  it('answers the requests in flight, loses no accepted entry and leaves the group empty', async () => {
    const app = await spawnApp(iso, 'api,writer');
    const admin = await token('boss', 'admin');
    await gql(app.port, admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
      i: { id: 'drain', title: 'Drain', reward: 'Cake', stock: STOCK, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
    });
    const tokens = await Promise.all(Array.from({ length: USERS }, (_, i) => token(`d${i}`)));
    let sent = 0;
    const answers = new Map<string, Answer>();
    const burst = pool(tokens, 30, async (t, i) => {
      sent++;
      let answer: Answer;
      try {
        const r = await gql(app.port, t, `mutation { enter(campaignId: "drain") { entry { ticket } rejection } }`);
        const ticket = r.data?.enter?.entry?.ticket;
        const code = r.errors?.[0]?.extensions?.code;
        answer = ticket ? { ticket } : code === 'UNAVAILABLE' ? 'unavailable' : { error: JSON.stringify(r.errors ?? r.data) };
      } catch (err) {
        answer = failureOf(err);
      }
      answers.set(`d${i}`, answer);
    });
    await waitUntil(
      async () => sent,
      (n) => n >= 100,
      { what: '100 calls sent', everyMs: 5 },
    );
    const exited = new Promise<number | null>((r) => app.child.once('exit', (code) => r(code)));
    app.child.kill('SIGTERM');
    await burst;
    expect(await exited).toBe(0);

    const accepted = new Map([...answers].flatMap(([u, a]) => (typeof a === 'object' && 'ticket' in a ? [[u, a.ticket] as const] : [])));
    expect(accepted.size).toBeGreaterThan(0);
    expect([...answers.values()].filter((a) => typeof a === 'object' && 'error' in a)).toEqual([]);

    const admin2 = new Kafka({ brokers: iso.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin2.connect();
    const { groups } = await admin2.describeGroups([iso.config.groups.writer]);
    await admin2.disconnect();
    expect(groups[0]!.members).toEqual([]);

    // the next writer decides what the first one left undecided; then the log is whole
    const again = await spawnApp(iso, 'api,writer');
    try {
      const audit = await waitUntil(
        () => auditFromLog(iso.config, 'drain'),
        (a) => a.winners === Math.min(a.stock, a.entrants) && a.gifticons === a.winners,
        { what: 'every entrant of drain decided' },
      );
      expect(audit.problems).toEqual([]);
      // every acknowledged entry is in the log, at the place its ticket names
      for (const [user, ticket] of accepted) expect(audit.state.places.get(user)?.ticket, user).toBe(ticket);
      // and nobody whose entry the server wrote went without its answer: a call cut off by the
      // drain was never taken (it is not in the log)
      const unanswered = [...audit.state.places.keys()].filter((u) => !accepted.has(u));
      expect(unanswered.map((u) => `${u}: ${JSON.stringify(answers.get(u))}`)).toEqual([]);

      // the next writer decides a new entry (the gate cannot answer without it: stock is left)
      const late = await token('after-restart');
      const r = await gql(again.port, late, `mutation { enter(campaignId: "drain") { entry { status } rejection } }`);
      expect(r.data!.enter.rejection).toBeNull();
      const decided = await decidedEntry(again.port, late, 'drain');
      expect(decided).toMatchObject({ status: 'WON', position: audit.entrants + 1 });
    } finally {
      await again.kill();
    }
  });
});
