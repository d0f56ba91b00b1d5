import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MIGRATIONS_DIR, tablesOf } from '../../src/infra/prisma/migrate.js';
import { behindMessage } from '../../src/infra/prisma/prepare.js';

const migrations = readdirSync(DEFAULT_MIGRATIONS_DIR)
  .sort()
  .filter((n) => statSync(path.join(DEFAULT_MIGRATIONS_DIR, n)).isDirectory())
  .map((n) => readFileSync(path.join(DEFAULT_MIGRATIONS_DIR, n, 'migration.sql'), 'utf8'));

describe('the tables the migrations leave behind', () => {
  it('are the read side of schema.prisma', () => {
    expect(tablesOf(migrations).sort()).toEqual([
      'campaign_reports',
      'campaigns',
      'code_data_keys',
      'code_reads',
      'entries',
      'gifticons',
      'log_identities',
      'parked_records',
      'projection_checkpoints',
      'winners',
    ]);
  });

  it('follow drops and renames, and ignore comments', () => {
    const sqls = [
      'CREATE TABLE "a" ("id" TEXT);\n-- CREATE TABLE "commented" ();\nCREATE TABLE IF NOT EXISTS public."b" ();\n/* CREATE TABLE "c" */',
      'ALTER TABLE "a" RENAME TO "a2";\nALTER TABLE "b" RENAME COLUMN "x" TO "y";\nCREATE TABLE "d" ();',
      'DROP TABLE "d";\nALTER TABLE "a2" ADD COLUMN "z" INTEGER;',
    ];
    expect(tablesOf(sqls).sort()).toEqual(['a2', 'b']);
  });
});

describe('a server with DB_MIGRATE=off and a database behind says what to do in one line', () => {
  it('names the missing migrations and npm run db:migrate', () => {
    const m = behindMessage('firstcome', {
      databaseExists: true,
      pending: ['20261125090000_read_side', '20261125091000_batch'],
      missingTables: [],
    })!;
    expect(m).toBe(
      'database firstcome is behind, 2 migrations not applied (20261125090000_read_side, 20261125091000_batch): run `npm run db:migrate` (DB_MIGRATE=off: this server does not migrate)',
    );
    expect(m).not.toContain('\n');
  });

  it('says when the database does not exist, or lacks a table, and nothing when it is up to date', () => {
    expect(behindMessage('fc', { databaseExists: false, pending: ['x_init'], missingTables: [] })).toBe(
      'database fc does not exist, 1 migration not applied (x_init): run `npm run db:migrate` (DB_MIGRATE=off: this server does not migrate)',
    );
    expect(behindMessage('fc', { databaseExists: true, pending: [], missingTables: ['winners'] })).toContain(
      'lacks tables its migrations created (winners)',
    );
    expect(behindMessage('fc', { databaseExists: true, pending: [], missingTables: [] })).toBeNull();
  });
});
