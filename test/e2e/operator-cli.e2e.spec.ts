import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { createRedis, RedisOrdering } from '../../projections/redis-ordering/index.js';
import { eventually, gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';

/**
 * The operator commands as an operator runs them during a recovery: real `replay` / `report`
 * processes against the real broker, Redis and Postgres, with no firstcome server running, then
 * with a writer that dies, then with one coming up while they wait. Nothing here may hang: every
 * run has a deadline, and what it prints is checked.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CAMPAIGN = 'op-drop';
const STOCK = 5;
const USERS = 20;

const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { position } } }`;
const CAMPAIGN_Q = `query($id: ID!) { campaign(id: $id) { entrants winners remaining status } }`;
const REPLAY = `mutation($t: ReplayTarget!, $c: ID) { replay(target: $t, campaignId: $c) { id status } }`;
const JOB = `query($id: ID!) { job(id: $id) { id status progress error } }`;

let iso: Isolated;
let kafka: Kafka;
let ordering: RedisOrdering;
let jobs: pg.Pool;
let admin: string;
let partition: number;
let before: unknown;
const apps: AppProcess[] = [];

interface Run {
  code: number | null;
  ms: number;
  out: string;
  err: string;
}

/** `npm run <script> -- <args>` as its own process (what the npm script runs); killed at `limitMs`. */
function cli(script: 'replay' | 'report', args: string[], limitMs = 120_000) {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', `src/cli/${script}.ts`, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...iso.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const limit = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const done = new Promise<Run>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(limit);
      resolve({ code, ms: Date.now() - started, out, err });
    }),
  );
  return { done, output: () => out + err };
}

const lastLine = (s: string) => s.trim().split('\n').at(-1) ?? '';

async function writerGroup() {
  const a = kafka.admin();
  await a.connect();
  try {
    const { groups } = await a.describeGroups([iso.config.groups.writer]);
    return { state: groups[0]?.state ?? 'Dead', members: groups[0]?.members.length ?? 0 };
  } finally {
    await a.disconnect();
  }
}

async function replayJobs(): Promise<number> {
  const r = await jobs.query(`SELECT count(*)::int AS n FROM agenda_jobs WHERE name = 'replay'`).catch(() => ({ rows: [{ n: 0 }] }));
  return r.rows[0].n;
}

/** A member of the writer group that owns the partitions and never rebuilds: a writer that stalled. */
async function stalledWriter(): Promise<Consumer> {
  const stalled = kafka.consumer({ groupId: iso.config.groups.writer, sessionTimeout: 10_000, heartbeatInterval: 1000 });
  let assigned!: () => void;
  const joined = new Promise<void>((r) => (assigned = r));
  stalled.on(stalled.events.GROUP_JOIN, () => assigned());
  await stalled.connect();
  await stalled.subscribe({ topic: iso.config.topics.events });
  await stalled.run({ autoCommit: false, eachBatch: async () => undefined });
  stalled.pause([{ topic: iso.config.topics.events }]);
  await joined;
  return stalled;
}

async function untilOutput(run: { output(): string }, text: string, timeoutMs = 60_000): Promise<void> {
  const seen = await eventually(
    async () => run.output(),
    (o) => o.includes(text),
    timeoutMs,
  );
  expect(seen, `"${text}" never printed`).toContain(text);
}

beforeAll(async () => {
  iso = await isolated('operator_cli');
  kafka = new Kafka({ brokers: iso.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  ordering = new RedisOrdering(createRedis(iso.config.REDIS_URL), iso.config.REDIS_PREFIX);
  jobs = new pg.Pool({ connectionString: iso.env.DATABASE_URL, max: 2 });
  admin = await token('op-admin', 'admin');
  partition = partitionFor(CAMPAIGN, iso.config.EVENT_PARTITIONS);

  const app = await spawnApp(iso, 'api,writer,projector');
  const created = await gql(app.port, admin, CREATE, {
    i: { id: CAMPAIGN, title: 'Op', reward: 'Gift', stock: STOCK, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
  });
  expect(created.errors).toBeUndefined();
  for (let i = 0; i < USERS; i++) {
    const r = await gql(app.port, await token(`op-u${i}`), ENTER, { c: CAMPAIGN });
    expect(r.errors).toBeUndefined();
  }
  const read = async () => (await gql(app.port, admin, CAMPAIGN_Q, { id: CAMPAIGN })).data?.campaign;
  before = await eventually(read, (c) => c?.winners === STOCK && c?.entrants === STOCK);
  expect(before).toEqual({ entrants: STOCK, winners: STOCK, remaining: 0, status: 'SOLD_OUT' });
  // the state of an operator's recovery: the stack up, no firstcome server
  await app.kill('SIGTERM');
  const group = await eventually(writerGroup, (g) => g.members === 0);
  expect(group.members).toBe(0);
}, 240_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.kill('SIGTERM')));
  await jobs?.end();
  ordering?.redis.disconnect();
  await iso?.cleanup();
});

describe('operator commands with no writer running', () => {
  it('`replay --target redis` ends within 30 s with one line naming the partitions and the command that starts a writer, and deletes nothing', async () => {
    const run = await cli('replay', ['--target', 'redis']).done;
    console.log(`replay --target redis, no server (${run.ms} ms, exit ${run.code}):\n${run.out}${run.err}`);
    expect(run.code).toBe(1);
    expect(run.ms).toBeLessThan(30_000);
    expect(lastLine(run.err)).toBe(
      `replay failed: no writer owns partitions 0, 1 of ${iso.config.topics.events} (consumer group ${iso.config.groups.writer} has no member): ` +
        'start one with `npm start -- --roles writer`, then run this replay again (nothing was queued, deleted or rewound)',
    );
    // the progress line said what it waited on while it waited
    expect(run.err).toContain('checking for a writer: waiting for a writer to own partitions 0, 1');
    expect(await ordering.isBuilt({ topic: iso.config.topics.events, partition })).toBe(true);
    expect((await ordering.meta(CAMPAIGN))?.terms.stock).toBe(STOCK);
    expect(await replayJobs()).toBe(0);
  });

  it('--timeout ends the wait on time with exit 124 and what it waited on', async () => {
    // without --timeout this waits 120 s for a writer
    const run = await cli('replay', ['--target', 'redis', '--campaign', CAMPAIGN, '--writer-wait', '120', '--timeout', '4']).done;
    console.log(`replay --timeout 4, no server (${run.ms} ms, exit ${run.code}):\n${run.out}${run.err}`);
    expect(run.code).toBe(124);
    expect(run.ms).toBeGreaterThanOrEqual(4000);
    expect(run.ms).toBeLessThan(30_000);
    expect(run.err).toContain(
      `replay timed out after 4 s (--timeout) — checking for a writer: waiting for a writer to own partition ${partition} (group ${iso.config.groups.writer} has no member; start one: npm start -- --roles writer`,
    );
    expect(lastLine(run.err)).toBe('nothing was queued, deleted or rewound');
    expect(await replayJobs()).toBe(0);

    // a report no worker picks up: the wait for a worker ends too, and its job leaves the queue
    const report = await cli('report', ['--campaign', CAMPAIGN, '--worker-wait', '120', '--timeout', '3']).done;
    console.log(`report --timeout 3, no server (${report.ms} ms, exit ${report.code}):\n${report.out}${report.err}`);
    expect(report.code).toBe(124);
    expect(report.ms).toBeLessThan(30_000);
    expect(report.err).toContain('report timed out after 3 s (--timeout) — QUEUED · waiting for a worker to pick the job up');
    expect(lastLine(report.err)).toMatch(/^job [0-9a-f-]{36} was taken off the queue: nothing ran$/);
    const left = await jobs.query(`SELECT count(*)::int AS n FROM agenda_jobs WHERE name = 'report'`);
    expect(left.rows[0].n).toBe(0);
  });

  it('the GraphQL replay job fails within seconds, and its error says the same line', async () => {
    const server = await spawnApp(iso, 'api,worker'); // no writer
    apps.push(server);
    try {
      const queued = await gql<{ replay: { id: string } }>(server.port, admin, REPLAY, { t: 'REDIS', c: CAMPAIGN });
      expect(queued.errors).toBeUndefined();
      const id = queued.data!.replay.id;
      const started = Date.now();
      const job = await eventually(
        async () => (await gql<{ job: { status: string; error: string | null } }>(server.port, admin, JOB, { id })).data!.job,
        (j) => j.status === 'FAILED',
        30_000,
      );
      console.log(`GraphQL job(id) after ${Date.now() - started} ms: ${JSON.stringify(job)}`);
      expect(job).toMatchObject({
        status: 'FAILED',
        error:
          `no writer owns partition ${partition} of ${iso.config.topics.events} (consumer group ${iso.config.groups.writer} has no member): ` +
          'start one with `npm start -- --roles writer`, then run the replay again (nothing was deleted or rewound)',
      });
      expect(await ordering.isBuilt({ topic: iso.config.topics.events, partition })).toBe(true);
    } finally {
      await server.kill('SIGTERM');
    }
  });
});

describe('operator commands with a writer that dies, then one coming up', () => {
  it('a writer that leaves during the rebuild ends the wait with the line, instead of a wait that never ends', async () => {
    const stalled = await stalledWriter();
    const run = cli('replay', ['--target', 'redis', '--campaign', CAMPAIGN, '--worker-wait', '0']);
    await untilOutput(run, `rebuilding: waiting for the writer of partition ${partition}`);
    await stalled.disconnect(); // the writer is gone
    const left = Date.now();
    const r = await run.done;
    console.log(`replay while the writer left (${r.ms} ms, exit ${r.code}, ${Date.now() - left} ms after it left):\n${r.out}${r.err}`);
    expect(r.code).toBe(1);
    expect(Date.now() - left).toBeLessThan(30_000);
    expect(lastLine(r.err)).toMatch(
      new RegExp(
        `^replay failed: the rebuild stopped \\(partition ${partition} at offset 0 of \\d+\\): no writer owns partition ${partition} of ${iso.config.topics.events.replace(/\./g, '\\.')} ` +
          `\\(consumer group ${iso.config.groups.writer.replace(/\./g, '\\.')} has no member\\): start one with \`npm start -- --roles writer\`, it finishes the rebuild by itself`,
      ),
    );
    expect(await ordering.isBuilt({ topic: iso.config.topics.events, partition })).toBe(false); // deleted, waiting for its writer
  });

  it('started again with a writer coming up during the wait, it completes, and the campaign reads as before', async () => {
    const run = cli('replay', ['--target', 'redis', '--campaign', CAMPAIGN, '--writer-wait', '90']);
    await untilOutput(run, `waiting for a writer to own partition ${partition}`);
    const server = await spawnApp(iso, 'api,writer'); // the server comes up while the replay waits
    apps.push(server);
    const r = await run.done;
    console.log(`replay with a writer coming up (${r.ms} ms, exit ${r.code}):\n${r.out}${r.err}`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/│ status\s+│ SUCCEEDED/);
    expect(r.out).toMatch(/│ redis: campaigns deleted\s+│ 1 /);
    expect(await ordering.isBuilt({ topic: iso.config.topics.events, partition })).toBe(true);
    const after = await eventually(
      async () => (await gql(server.port, admin, CAMPAIGN_Q, { id: CAMPAIGN })).data?.campaign,
      (c) => c?.winners === STOCK,
    );
    expect(after).toEqual(before);
  });

  it('--timeout ends a wait of the job it runs: exit 124 with what it waited on, and the job FAILED with that reason, not retried', async () => {
    for (const a of apps.splice(0)) await a.kill('SIGTERM');
    expect((await eventually(writerGroup, (g) => g.members === 0)).members).toBe(0);
    const stalled = await stalledWriter();
    try {
      // without --timeout this waits for the stalled writer until the 5 min stall check
      const r = await cli('replay', ['--target', 'redis', '--campaign', CAMPAIGN, '--worker-wait', '0', '--timeout', '15']).done;
      console.log(`replay --timeout 15 with a stalled writer (${r.ms} ms, exit ${r.code}):\n${r.out}${r.err}`);
      expect(r.code).toBe(124);
      expect(r.ms).toBeGreaterThanOrEqual(15_000);
      expect(r.ms).toBeLessThan(45_000);
      expect(r.err).toContain(
        `replay timed out after 15 s (--timeout) — RUNNING here · rebuilding: waiting for the writer of partition ${partition} to reach offset`,
      );
      const id = /^job ([0-9a-f-]{36}) ran in this process and is FAILED with that reason$/.exec(lastLine(r.err))?.[1];
      expect(id, lastLine(r.err)).toBeDefined();
      const row = await jobs.query(`SELECT fail_reason, fail_count, next_run_at FROM agenda_jobs WHERE id = $1`, [id]);
      expect(row.rows[0]).toMatchObject({ fail_count: 1, next_run_at: null });
      expect(row.rows[0].fail_reason).toMatch(
        /^the operator command that ran it stopped waiting after 15 s \(--timeout\) — RUNNING here · rebuilding: waiting for the writer of partition \d/,
      );
    } finally {
      await stalled.disconnect();
    }
  });
});
