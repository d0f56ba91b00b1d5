import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createPrisma, Prisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { dropDatabase, pgConfig } from '../../src/infra/prisma/database.js';
import { DEFAULT_MIGRATIONS_DIR, migrate, schemaStatus } from '../../src/infra/prisma/migrate.js';
import { freshDatabase, type FreshDatabase } from '../support/db.js';
import { schemaDatamodel } from '../support/prismaSchema.js';
import { drift } from '../support/schemaDrift.js';

const migrationNames = (): string[] =>
  readdirSync(DEFAULT_MIGRATIONS_DIR)
    .filter((n) => statSync(path.join(DEFAULT_MIGRATIONS_DIR, n)).isDirectory())
    .sort();

describe('prisma: migrations, schema drift and the pg adapter', () => {
  let db: FreshDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await freshDatabase('prisma_int'); // migrated once already
    client = new pg.Client(pgConfig(db.url));
    await client.connect();
  });

  afterAll(async () => {
    await client?.end().catch(() => {});
    await db?.drop();
  });

  it('applies the migrations once, records them as Prisma does, and is a no-op the second time', async () => {
    // freshDatabase() migrated it already; start over in a database of our own to see `applied`.
    const url = new URL(db.url);
    url.pathname = `${url.pathname}_m`;
    const lines: string[] = [];
    try {
      const first = await migrate(url.toString(), { log: (l) => lines.push(l) });
      expect(first.applied).toEqual(migrationNames());
      expect(first.skipped).toEqual([]);
      expect(lines.some((l) => l.includes('created database'))).toBe(true);

      const second = await migrate(url.toString());
      expect(second.applied).toEqual([]);
      expect(second.skipped).toEqual(migrationNames());

      const c = new pg.Client(pgConfig(url.toString()));
      await c.connect();
      try {
        const rows = (
          await c.query<{
            migration_name: string;
            checksum: string;
            finished_at: Date | null;
            rolled_back_at: Date | null;
            applied_steps_count: number;
          }>(
            'SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name',
          )
        ).rows;
        expect(rows.map((r) => r.migration_name)).toEqual(migrationNames());
        for (const r of rows) {
          const sql = readFileSync(path.join(DEFAULT_MIGRATIONS_DIR, r.migration_name, 'migration.sql'));
          expect(r.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
          expect(r.finished_at).toBeInstanceOf(Date);
          expect(r.rolled_back_at).toBeNull();
          expect(r.applied_steps_count).toBe(1);
        }
        // Prisma's exact bookkeeping table
        const cols = (
          await c.query<{ column_name: string; data_type: string; is_nullable: string }>(
            `SELECT column_name, data_type, is_nullable FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = '_prisma_migrations' ORDER BY ordinal_position`,
          )
        ).rows.map((r) => `${r.column_name} ${r.data_type} ${r.is_nullable === 'NO' ? 'NOT NULL' : 'NULL'}`);
        expect(cols).toEqual([
          'id character varying NOT NULL',
          'checksum character varying NOT NULL',
          'finished_at timestamp with time zone NULL',
          'migration_name character varying NOT NULL',
          'logs text NULL',
          'rolled_back_at timestamp with time zone NULL',
          'started_at timestamp with time zone NOT NULL',
          'applied_steps_count integer NOT NULL',
        ]);

        // an applied migration edited afterwards is refused with a clear message
        await c.query(`UPDATE "_prisma_migrations" SET checksum = repeat('0', 64) WHERE migration_name = $1`, [rows[0]!.migration_name]);
        await expect(migrate(url.toString())).rejects.toThrow(/modified after it was applied/);
      } finally {
        await c.end();
      }
    } finally {
      await dropDatabase(url.toString());
    }
  });

  it('two processes migrating at once are serialised by the advisory lock', async () => {
    const url = new URL(db.url);
    url.pathname = `${url.pathname}_c`;
    try {
      const results = await Promise.all([migrate(url.toString()), migrate(url.toString()), migrate(url.toString())]);
      expect(results.flatMap((r) => r.applied).sort()).toEqual(migrationNames());
    } finally {
      await dropDatabase(url.toString());
    }
  });

  it('a table dropped under its applied migrations: schemaStatus names it, and migrate creates the read side anew', async () => {
    const url = new URL(db.url);
    url.pathname = `${url.pathname}_r`;
    const u = url.toString();
    try {
      expect(await schemaStatus(u)).toEqual({ databaseExists: false, pending: migrationNames(), missingTables: [] });
      await migrate(u);
      expect(await schemaStatus(u)).toEqual({ databaseExists: true, pending: [], missingTables: [] });
      const c = new pg.Client(pgConfig(u));
      await c.connect();
      try {
        await c.query(`INSERT INTO projection_checkpoints VALUES ('prisma-tables', 't', 0, 42, now())`);
        await c.query('DROP TABLE winners');
        expect(await schemaStatus(u)).toEqual({ databaseExists: true, pending: [], missingTables: ['winners'] });

        const lines: string[] = [];
        const r = await migrate(u, { log: (l) => lines.push(l) });
        expect(r.recreated).toEqual(['winners']);
        expect(r.applied).toEqual(migrationNames());
        expect(lines.join('\n')).toMatch(/missing tables winners .* creating the read side anew/);
        // every table is back, empty: the projector refills them from offset 0 (no checkpoint row says otherwise)
        expect((await c.query('SELECT count(*)::int AS n FROM winners')).rows[0].n).toBe(0);
        expect((await c.query('SELECT count(*)::int AS n FROM projection_checkpoints')).rows[0].n).toBe(0);
        // as `prisma migrate resolve --rolled-back` and a new deploy would have recorded it
        const rows = (
          await c.query<{ migration_name: string; rolled_back: boolean }>(
            'SELECT migration_name, rolled_back_at IS NOT NULL AS rolled_back FROM "_prisma_migrations" ORDER BY migration_name, started_at',
          )
        ).rows;
        expect(rows).toEqual(
          migrationNames().flatMap((m) => [
            { migration_name: m, rolled_back: true },
            { migration_name: m, rolled_back: false },
          ]),
        );
        expect(await schemaStatus(u)).toEqual({ databaseExists: true, pending: [], missingTables: [] });
        expect(await migrate(u)).toEqual({ applied: [], skipped: migrationNames(), recreated: [] });
      } finally {
        await c.end();
      }
    } finally {
      await dropDatabase(u);
    }
  });

  it('isolates by schema through ?schema=', async () => {
    const url = new URL(db.url);
    url.searchParams.set('schema', 'iso_test');
    expect((await migrate(url.toString())).applied).toEqual(migrationNames());
    const prisma = createPrisma(url.toString());
    try {
      await prisma.projectionCheckpoint.create({
        data: { projection: 'p', topic: 't', partition: 0, nextOffset: 42n, updatedAt: new Date() },
      });
      const rows = await prisma.$queryRaw<Array<{ s: string; n: number }>>`
        SELECT current_schema() AS s, count(*)::int AS n FROM projection_checkpoints`;
      expect(rows).toEqual([{ s: 'iso_test', n: 1 }]);
      // the public schema's table is untouched
      expect((await client.query('SELECT count(*)::int AS n FROM public.projection_checkpoints')).rows[0].n).toBe(0);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('schema.prisma, the generated client and the migrations agree (drift guard)', async () => {
    const datamodel = schemaDatamodel();
    expect(datamodel.models.length).toBeGreaterThan(0);

    // the migrated database matches schema.prisma
    const problems = await drift(datamodel, client);

    // and the generated client is not stale (run `npm run db:generate` after editing schema.prisma)
    const generatedModels = Object.keys(Prisma.ModelName).sort().join(', ');
    const schemaModels = datamodel.models
      .map((m) => m.name)
      .sort()
      .join(', ');
    if (generatedModels !== schemaModels) {
      problems.push(`generated client has models ${generatedModels}, schema.prisma ${schemaModels}: run npm run db:generate`);
    }
    const ns = Prisma as unknown as Record<string, Record<string, string> | undefined>;
    for (const m of datamodel.models) {
      const want = m.fields
        .filter((f) => f.kind === 'scalar' || f.kind === 'enum')
        .map((f) => f.name)
        .join(', ');
      const got = Object.values(ns[`${m.name}ScalarFieldEnum`] ?? {}).join(', ');
      if (got !== want) problems.push(`generated client has ${m.name} fields ${got}, schema.prisma ${want}: run npm run db:generate`);
    }

    expect(problems, `schema.prisma, prisma/migrations and src/generated/prisma disagree:\n  ${problems.join('\n  ')}\n`).toEqual([]);
  });

  describe('the client through @prisma/adapter-pg', () => {
    let prisma: PrismaClient;
    const now = new Date('2026-01-01T00:00:00.000Z');
    const campaign = (id: string) => ({
      id,
      title: 'Coffee drop',
      reward: 'Americano',
      stock: 3,
      opensAt: now,
      closesAt: new Date(now.getTime() + 3_600_000),
      createdAt: now,
      updatedAt: now,
    });
    const entry = (campaignId: string, userId: string, position: number) => ({
      campaignId,
      userId,
      ticket: `t-${userId}`,
      position,
      status: 'WON',
      logOffset: BigInt(position) + 9_007_199_254_740_993n,
      enteredAt: now,
    });

    beforeAll(() => {
      prisma = createPrisma(db.url);
    });
    afterAll(async () => {
      await prisma?.$disconnect();
    });

    it('rolls an interactive transaction back when it throws, and commits otherwise', async () => {
      await expect(
        prisma.$transaction(async (tx) => {
          await tx.campaign.create({ data: campaign('c-rollback') });
          await tx.entry.create({ data: entry('c-rollback', 'u1', 1) });
          expect(await tx.entry.count({ where: { campaignId: 'c-rollback' } })).toBe(1); // visible inside
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await prisma.campaign.findUnique({ where: { id: 'c-rollback' } })).toBeNull();
      expect(await prisma.entry.count({ where: { campaignId: 'c-rollback' } })).toBe(0);

      await prisma.$transaction(async (tx) => {
        await tx.campaign.create({ data: campaign('c-commit') });
        await tx.entry.create({ data: entry('c-commit', 'u1', 1) });
      });
      const back = await prisma.campaign.findUnique({ where: { id: 'c-commit' } });
      expect(back).toMatchObject({ id: 'c-commit', stock: 3, entrants: 0, closedAt: null, opensAt: now });
      const entries = await prisma.entry.findMany({ where: { campaignId: 'c-commit' } });
      expect(entries).toHaveLength(1);
      expect(entries[0]!.logOffset).toBe(9_007_199_254_740_994n); // BigInt beyond 2^53 survives
    });

    it('createMany({ skipDuplicates }) inserts a duplicate key once; a plain duplicate create raises P2002', async () => {
      await prisma.campaign.create({ data: campaign('c-dup') });
      const first = await prisma.entry.createMany({
        data: [entry('c-dup', 'u1', 1), entry('c-dup', 'u1', 1), entry('c-dup', 'u2', 2)],
        skipDuplicates: true,
      });
      expect(first.count).toBe(2);
      const again = await prisma.entry.createMany({ data: [entry('c-dup', 'u1', 1)], skipDuplicates: true });
      expect(again.count).toBe(0);
      expect(await prisma.entry.count({ where: { campaignId: 'c-dup' } })).toBe(2);

      const err = await prisma.entry.create({ data: entry('c-dup', 'u1', 1) }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
      expect((err as Prisma.PrismaClientKnownRequestError).code).toBe('P2002');

      // the unique (campaign_id, position) constraint is enforced as well
      await expect(prisma.entry.create({ data: entry('c-dup', 'u3', 2) })).rejects.toMatchObject({ code: 'P2002' });
    });
  });
});
