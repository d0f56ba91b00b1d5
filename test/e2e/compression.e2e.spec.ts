import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { eventually, gql, isolated, pool, runToEnd, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';

/**
 * Processes that disagree on KAFKA_COMPRESSION share one log: the API and the single writer append
 * lz4 batches, and a read side set to `none` builds Postgres from them. A value that names no usable
 * codec stops a process at start with the variable named.
 */
const USERS = 60;
const STOCK = 20;
const CAMPAIGN = 'lz4-drop';
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { ticket } } }`;
const COUNTS = `query($c: ID!) { winners(campaignId: $c, first: 1) { totalCount } gifticons(campaignId: $c, first: 1) { totalCount } }`;

let iso: Isolated;
let writer: AppProcess | null = null;
let reader: AppProcess | null = null;

beforeAll(async () => {
  iso = await isolated('compress_e2e');
});
afterAll(async () => {
  await writer?.kill();
  await reader?.kill();
  await iso.cleanup();
});

describe('compression across processes', () => {
  it('a read side set to none builds the tables from the lz4 batches the API and the writer appended', async () => {
    writer = await spawnApp(iso, 'api,writer', { KAFKA_COMPRESSION: 'lz4' });
    const admin = await token('compress-admin', 'admin');
    const closesAt = new Date(Date.now() + 3_600_000).toISOString();
    expect(
      (await gql(writer.port, admin, CREATE, { i: { id: CAMPAIGN, title: 'Lz4', reward: 'Cake', stock: STOCK, closesAt } })).errors,
    ).toBeUndefined();
    const answers = await pool(
      Array.from({ length: USERS }, (_, i) => i),
      20,
      async (i) =>
        gql<{ enter: { rejection: string | null; entry: { ticket: string } | null } }>(writer!.port, await token(`lz4-u${i}`), ENTER, {
          c: CAMPAIGN,
        }),
    );
    // the line takes users until the stock is gone; the rest are told SOLD_OUT
    const accepted = answers.filter((a) => a.data?.enter.entry?.ticket).length;
    expect(accepted).toBeGreaterThanOrEqual(STOCK);
    expect(answers.filter((a) => !a.data?.enter.entry).map((a) => a.data?.enter.rejection)).toEqual(
      Array(USERS - accepted).fill('SOLD_OUT'),
    );

    reader = await spawnApp(iso, 'api,projector', { KAFKA_COMPRESSION: 'none' });
    const counts = await eventually(
      () => gql<{ winners: { totalCount: number }; gifticons: { totalCount: number } }>(reader!.port, admin, COUNTS, { c: CAMPAIGN }),
      (r) => r.data?.winners.totalCount === STOCK && r.data.gifticons.totalCount === STOCK,
    );
    expect(counts.errors).toBeUndefined();
    expect(counts.data).toEqual({ winners: { totalCount: STOCK }, gifticons: { totalCount: STOCK } });
    const audit = await auditFromLog(iso.config, CAMPAIGN);
    expect(audit.problems).toEqual([]);
    expect([audit.entrants, audit.winners, audit.gifticons]).toEqual([accepted, STOCK, STOCK]);
  });

  it('refuses to start, exit code 2, on a value that names no codec or a codec whose package is not installed', async () => {
    for (const [value, said] of [
      ['brotli', 'KAFKA_COMPRESSION: expected one of none, gzip, lz4, snappy, zstd'],
      ['zstd', 'KAFKA_COMPRESSION: zstd needs the KafkaJS codec package @kafkajs/zstd, which is not installed'],
    ] as const) {
      const run = await runToEnd(process.execPath, ['--import', 'tsx', 'src/main.ts', '--roles', 'api'], {
        ...iso.env,
        KAFKA_COMPRESSION: value,
      });
      expect(run.code, run.output).toBe(2);
      expect(run.output).toContain(said);
    }
  });
});
