import { readdirSync } from 'node:fs';
import pg from 'pg';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConfig } from '../../src/infra/prisma/database.js';
import { schemaStatus } from '../../src/infra/prisma/migrate.js';
import { eventually, freePort, gql, isolated, pool, runToEnd, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { emptyDatabase, type FreshDatabase } from '../support/db.js';
import { elapse } from '../support/wait.js';

/**
 * Ready means ready (#16), with real processes: a server started on a database nobody migrated
 * serves its read side; DB_MIGRATE=off refuses a database that is behind; /readyz is 503, naming
 * the component and its error, while the projector's table is gone, and 200 again once
 * `npm run db:migrate` has restored it and the rows are back; with Postgres unreachable the server
 * answers /healthz but is never ready.
 */
type Ready = { ok: boolean; checks: Record<string, boolean>; failing: Record<string, string> };

// `decider` is the old name of `writer`: a process started with it runs the writer all the same
const ALL_ROLES = 'api,decider,projector,worker';
/** every migration of this build, by name */
const MIGRATIONS = readdirSync(new URL('../../prisma/migrations', import.meta.url), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { status position } } }`;
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const WINNERS = `query($c: ID!) { winners(campaignId: $c, first: 100) { totalCount edges { node { userId position } } } }`;

let iso: Isolated;
let db: FreshDatabase;
let app: AppProcess | null = null;
let admin: string;

const readyz = async (port: number): Promise<{ status: number; body: Ready }> => {
  const r = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: r.status, body: (await r.json()) as Ready };
};
const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

async function winnersOf(campaignId: string): Promise<{ userId: string; position: number }[]> {
  const r = await gql<{ winners: { totalCount: number; edges: { node: { userId: string; position: number } }[] } }>(
    app!.port,
    admin,
    WINNERS,
    { c: campaignId },
  );
  if (r.errors) return [];
  return r.data!.winners.edges.map((e) => e.node).sort((a, b) => a.position - b.position);
}

/** Enters every user once; the winners as `enter` told them. */
async function enterAll(campaignId: string, users: string[]): Promise<{ userId: string; position: number }[]> {
  const won: { userId: string; position: number }[] = [];
  await pool(users, 4, async (userId) => {
    const r = await gql<{ enter: { rejection: string | null; entry: { status: string; position: number | null } | null } }>(
      app!.port,
      await token(userId),
      ENTER,
      { c: campaignId },
    );
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    const entry = r.data!.enter.entry;
    expect(entry, `${userId} was turned away: ${r.data!.enter.rejection}`).not.toBeNull();
    expect(entry!.status).toBe('WON'); // each test's stock covers its users: every answer is a decision
    won.push({ userId, position: entry!.position! });
  });
  return won.sort((a, b) => a.position - b.position);
}

beforeAll(async () => {
  iso = await isolated('readiness');
  db = await emptyDatabase('readiness_fresh');
  admin = await token('ready-admin', 'admin');
});

afterAll(async () => {
  await app?.kill('SIGTERM');
  await db?.drop();
  await iso?.cleanup();
});

describe('migrations at start', () => {
  it('with DB_MIGRATE=off, a fresh database makes the server refuse to start, in one line naming the missing migrations and npm run db:migrate', async () => {
    const port = await freePort();
    const r = await runToEnd(process.execPath, ['--import', 'tsx', 'src/main.ts', '--roles', ALL_ROLES], {
      ...iso.env,
      DATABASE_URL: db.url,
      DB_MIGRATE: 'off',
      PORT: String(port),
    });
    expect(r.code, r.output).toBe(2);
    const pending = (await schemaStatus(db.url)).pending;
    expect(pending).toEqual(MIGRATIONS); // it changed nothing
    const lines = r.output.split('\n').filter((l) => l.startsWith('firstcome refuses to start:'));
    expect(lines).toEqual([
      `firstcome refuses to start: database ${db.name} is behind, ${MIGRATIONS.length} migrations not applied (${pending.join(', ')}): run \`npm run db:migrate\` (DB_MIGRATE=off: this server does not migrate)`,
    ]);
    console.log(`DB_MIGRATE=off on a fresh database, exit ${r.code}: ${lines[0]}`);
  });

  it('npm start on a fresh database migrates it, and a small drop fills the winners table', async () => {
    app = await spawnApp(iso, ALL_ROLES, { DATABASE_URL: db.url });
    expect(await schemaStatus(db.url)).toEqual({ databaseExists: true, pending: [], missingTables: [] });
    expect(await readyz(app.port)).toEqual({
      status: 200,
      body: { ok: true, checks: { kafka: true, redis: true, postgres: true, consumers: true }, failing: {} },
    });

    expect(
      (await gql(app.port, admin, CREATE, { i: { id: 'fresh', title: 'Fresh', reward: 'Cake', stock: 3, closesAt: inAnHour() } })).errors,
    ).toBeUndefined();
    const told = await enterAll('fresh', ['f1', 'f2', 'f3']);
    expect(told.map((w) => w.position)).toEqual([1, 2, 3]);
    expect(
      await eventually(
        () => winnersOf('fresh'),
        (w) => w.length === 3,
        60_000,
      ),
    ).toEqual(told);
  });
});

describe('readiness reflects every role', () => {
  it('a projector whose table was dropped: 503 naming it while enter answers; after npm run db:migrate, ready again with every row back', async () => {
    const sql = new pg.Client(pgConfig(db.url));
    await sql.connect();
    try {
      await sql.query('DROP TABLE winners');
      expect(
        (await gql(app!.port, admin, CREATE, { i: { id: 'after', title: 'After', reward: 'Tea', stock: 5, closesAt: inAnHour() } })).errors,
      ).toBeUndefined();
      const before = await enterAll('after', ['a1', 'a2', 'a3']);

      const failing = await eventually(
        () => readyz(app!.port),
        (r) => r.status === 503,
        60_000,
      );
      console.log(`table dropped under the projector: /readyz ${failing.status} ${JSON.stringify(failing.body)}`);
      expect(failing.status).toBe(503);
      expect(failing.body.checks).toEqual({ kafka: true, redis: true, postgres: true, consumers: true });
      expect(failing.body.failing).toEqual({
        'projector/prisma-tables': 'Raw query failed. Code: `42P01`. Message: `relation "winners" does not exist`',
      });
      expect((await fetch(`http://127.0.0.1:${app!.port}/healthz`)).status).toBe(200);

      // the write path does not need the read side: enter keeps deciding while the server is not ready
      const during = await enterAll('after', ['a4', 'a5']);
      expect([...before, ...during].map((w) => w.position).sort()).toEqual([1, 2, 3, 4, 5]);
      expect((await readyz(app!.port)).status).toBe(503);

      const migrated = await runToEnd('npm', ['run', 'db:migrate'], { DATABASE_URL: db.url });
      expect(migrated.code, migrated.output).toBe(0);
      expect(migrated.output).toContain('read side created anew (missing: winners)');

      const back = await eventually(
        () => readyz(app!.port),
        (r) => r.status === 200,
        90_000,
      );
      expect(back.body).toEqual({ ok: true, checks: { kafka: true, redis: true, postgres: true, consumers: true }, failing: {} });
      // the rows lost with the table came back from the log, and those decided meanwhile too
      expect(
        await eventually(
          () => winnersOf('fresh'),
          (w) => w.length === 3,
          60_000,
        ),
      ).toHaveLength(3);
      const afterWinners = await eventually(
        () => winnersOf('after'),
        (w) => w.length === 5,
        60_000,
      );
      expect(afterWinners).toEqual([...before, ...during].sort((a, b) => a.position - b.position));
      // and the projection stands at the end of the log: its checkpoints reached every partition's high watermark
      const kafka = new Kafka({ brokers: iso.config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
      const kadmin = kafka.admin();
      await kadmin.connect();
      const highs = Object.fromEntries((await kadmin.fetchTopicOffsets(iso.config.topics.events)).map((o) => [o.partition, o.high]));
      await kadmin.disconnect();
      const checkpoints = await eventually(
        async () =>
          Object.fromEntries(
            (
              await sql.query<{ partition: number; next_offset: string }>('SELECT partition, next_offset FROM projection_checkpoints')
            ).rows.map((r) => [r.partition, String(r.next_offset)]),
          ),
        (c) => JSON.stringify(c) === JSON.stringify(highs),
        30_000,
      );
      expect(checkpoints).toEqual(highs);
    } finally {
      await sql.end();
    }
  });

  it('an archive whose EventStoreDB cannot be reached: 503 naming it', async () => {
    const closed = await freePort();
    const archive = await spawnApp(
      iso,
      'projector',
      { DATABASE_URL: db.url, EVENTSTORE_URL: `esdb://127.0.0.1:${closed}?tls=false` },
      { until: 'listening' },
    );
    try {
      const r = await eventually(
        () => readyz(archive.port),
        (x) => x.body.failing['projector/eventstore-archive'] !== undefined,
        60_000,
      );
      console.log(`EventStoreDB unreachable: /readyz ${r.status} ${JSON.stringify(r.body)}`);
      expect(r.status).toBe(503);
      expect(Object.keys(r.body.failing)).toEqual(['projector/eventstore-archive']);
    } finally {
      await archive.kill('SIGKILL');
    }
  });

  it('Postgres unreachable: the process stays up and answers /healthz, but is never ready, and says why', async () => {
    const closed = await freePort();
    const url = `postgresql://postgres:not-a-secret-to-show@127.0.0.1:${closed}/firstcome`;
    const down = await spawnApp(iso, ALL_ROLES, { DATABASE_URL: url }, { until: 'listening' });
    try {
      const seen: { status: number; body: Ready }[] = [];
      const end = Date.now() + 15_000;
      while (Date.now() < end) {
        seen.push(await readyz(down.port));
        await elapse(500, '/readyz sampled twice a second: never ready, all along');
      }
      console.log(`Postgres unreachable: /readyz ${seen.at(-1)!.status} ${JSON.stringify(seen.at(-1)!.body)}`);
      expect(down.child.exitCode).toBeNull();
      expect(seen.filter((s) => s.status !== 503)).toEqual([]);
      for (const s of seen) {
        expect(s.body.checks.postgres).toBe(false);
        expect(s.body.checks.consumers).toBe(false); // the roles wait for the database
        expect(s.body.failing.postgres).toBe(`connect ECONNREFUSED 127.0.0.1:${closed}`);
      }
      expect((await fetch(`http://127.0.0.1:${down.port}/healthz`)).status).toBe(200);
      const g = await gql(down.port, null, '{ __typename }');
      expect(g.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
      expect(down.output()).not.toContain('not-a-secret-to-show');
    } finally {
      await down.kill('SIGKILL');
    }
  });
});
