import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createPrisma, Prisma, type PrismaClient } from '../../src/infra/prisma/client.js';
import { dropDatabase, pgConfig } from '../../src/infra/prisma/database.js';
import { DEFAULT_MIGRATIONS_DIR, migrate, schemaStatus } from '../../src/infra/prisma/migrate.js';
import { freshDatabase, type FreshDatabase } from '../support/db.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA_FILE = path.join(ROOT, 'prisma/schema.prisma');

// ---------------------------------------------------------------------------------------------
// Prisma's own schema parser, offline. `@prisma/internals` is not installed and the generated
// Prisma 7 client no longer exposes `Prisma.dmmf`, but the `prisma` CLI package ships the
// prisma-schema WebAssembly module it uses for getDMMF. Its wasm-bindgen glue is bundled inside
// the CLI, so the few lines of glue needed for `get_dmmf` are reproduced here.
// ---------------------------------------------------------------------------------------------

interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'object' | 'enum' | 'unsupported';
  type: string;
  isList: boolean;
  isRequired: boolean;
  isId: boolean;
  isUpdatedAt: boolean;
  hasDefaultValue: boolean;
  default?: unknown;
  nativeType?: [string, string[]] | null;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
  relationOnUpdate?: string;
}
interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
  primaryKey: { name: string | null; fields: string[] } | null;
}
interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  dbName?: string | null;
  fields: Array<{ name: string; sortOrder?: 'asc' | 'desc' }>;
}
interface Datamodel {
  models: DmmfModel[];
  enums: Array<{ name: string; dbName?: string | null }>;
  indexes: DmmfIndex[];
}

/** The bits of the WebAssembly API we use (tsconfig's lib has no DOM, @types/node 20 no WebAssembly). */
interface WasmTable {
  grow(n: number): number;
  get(i: number): unknown;
  set(i: number, v: unknown): void;
}
interface WasmApi {
  Module: (new (bytes: Uint8Array) => object) & {
    imports(m: object): Array<{ module: string; name: string; kind: string }>;
  };
  Instance: new (m: object, imports: object) => { exports: unknown };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

function getDatamodel(schemaText: string): Datamodel {
  const require = createRequire(import.meta.url);
  const wasmPath = path.join(path.dirname(require.resolve('prisma/package.json')), 'build/prisma_schema_build_bg.wasm');
  const mod = new WebAssembly.Module(readFileSync(wasmPath));
  type Exports = {
    memory: { buffer: ArrayBuffer };
    __wbindgen_externrefs: WasmTable;
    __wbindgen_start(): void;
    __wbindgen_malloc(len: number, align: number): number;
    __wbindgen_free(ptr: number, len: number, align: number): void;
    __externref_table_dealloc(idx: number): void;
    get_dmmf(ptr: number, len: number): [number, number, number, number];
  };
  // eslint-disable-next-line prefer-const -- set once the instance exists; the imports built before it read it lazily
  let ex: Exports | undefined;
  let panic = '';
  const text = (ptr: number, len: number): string => new TextDecoder().decode(new Uint8Array(ex!.memory.buffer, ptr >>> 0, len));
  const imports: Record<string, Record<string, (...a: number[]) => unknown>> = {};
  for (const imp of WebAssembly.Module.imports(mod)) {
    const ns = (imports[imp.module] ??= {});
    const n = imp.name;
    if (n.startsWith('__wbg_set_message_')) ns[n] = (p, l) => void (panic = text(p!, l!));
    else if (n.startsWith('__wbg_Error_')) ns[n] = (p, l) => new Error(text(p!, l!));
    else if (n.includes('wbindgen_throw'))
      ns[n] = (p, l) => {
        throw new Error(text(p!, l!));
      };
    else if (n === '__wbindgen_init_externref_table')
      ns[n] = () => {
        const t = ex!.__wbindgen_externrefs;
        const o = t.grow(4);
        t.set(0, undefined);
        [undefined, null, true, false].forEach((v, i) => t.set(o + i, v));
      };
    else throw new Error(`prisma-schema wasm wants an unknown import ${n}: update getDatamodel() for this Prisma version`);
  }
  ex = new WebAssembly.Instance(mod, imports).exports as unknown as Exports;
  ex.__wbindgen_start();
  const params = new TextEncoder().encode(JSON.stringify({ prismaSchema: [['schema.prisma', schemaText]], noColor: true }));
  const ptr = ex.__wbindgen_malloc(params.length, 1) >>> 0;
  new Uint8Array(ex.memory.buffer).set(params, ptr);
  let r: [number, number, number, number];
  try {
    r = ex.get_dmmf(ptr, params.length);
  } catch (err) {
    throw new Error(`prisma-schema wasm panicked: ${panic || String(err)}`, { cause: err });
  }
  if (r[3]) {
    const err = ex.__wbindgen_externrefs.get(r[2]) as unknown;
    ex.__externref_table_dealloc(r[2]);
    throw err instanceof Error ? err : new Error(String(err));
  }
  const json = text(r[0], r[1]);
  ex.__wbindgen_free(r[0], r[1], 1);
  return (JSON.parse(json) as { datamodel: Datamodel }).datamodel;
}

// --- what PostgreSQL should hold for a Prisma field -------------------------------------------

interface ExpectedType {
  udt: string;
  precision?: number; // datetime precision
  length?: number | null; // character maximum length
  numeric?: [number, number];
}

function expectedType(f: DmmfField, enums: Datamodel['enums']): ExpectedType {
  const list = (t: ExpectedType): ExpectedType => (f.isList ? { ...t, udt: `_${t.udt}` } : t);
  if (f.kind === 'enum') {
    const e = enums.find((x) => x.name === f.type);
    return list({ udt: e?.dbName ?? f.type });
  }
  if (f.nativeType) {
    const [name, args] = f.nativeType;
    const n = args.map(Number);
    switch (name) {
      case 'Timestamptz':
        return list({ udt: 'timestamptz', precision: n[0] ?? 6 });
      case 'Timestamp':
        return list({ udt: 'timestamp', precision: n[0] ?? 6 });
      case 'Date':
        return list({ udt: 'date' });
      case 'Text':
        return list({ udt: 'text' });
      case 'VarChar':
        return list({ udt: 'varchar', length: n[0] ?? null });
      case 'Char':
        return list({ udt: 'bpchar', length: n[0] ?? 1 });
      case 'Uuid':
        return list({ udt: 'uuid' });
      case 'SmallInt':
        return list({ udt: 'int2' });
      case 'Integer':
        return list({ udt: 'int4' });
      case 'BigInt':
        return list({ udt: 'int8' });
      case 'Real':
        return list({ udt: 'float4' });
      case 'DoublePrecision':
        return list({ udt: 'float8' });
      case 'Decimal':
        return list({ udt: 'numeric', numeric: [n[0] ?? 65, n[1] ?? 30] });
      case 'Boolean':
        return list({ udt: 'bool' });
      case 'JsonB':
        return list({ udt: 'jsonb' });
      case 'Json':
        return list({ udt: 'json' });
      default:
        throw new Error(`drift test: teach expectedType() the native type @db.${name} (${f.name})`);
    }
  }
  switch (f.type) {
    case 'String':
      return list({ udt: 'text' });
    case 'Int':
      return list({ udt: 'int4' });
    case 'BigInt':
      return list({ udt: 'int8' });
    case 'Float':
      return list({ udt: 'float8' });
    case 'Boolean':
      return list({ udt: 'bool' });
    case 'DateTime':
      return list({ udt: 'timestamp', precision: 3 });
    case 'Decimal':
      return list({ udt: 'numeric', numeric: [65, 30] });
    case 'Json':
      return list({ udt: 'jsonb' });
    case 'Bytes':
      return list({ udt: 'bytea' });
    default:
      throw new Error(`drift test: teach expectedType() the Prisma type ${f.type} (${f.name})`);
  }
}

/** Whether PostgreSQL should hold a column DEFAULT for this field, and what it should start with. */
function expectedDefault(f: DmmfField): { present: boolean; startsWith?: string } {
  if (!f.hasDefaultValue) return { present: false };
  const d = f.default as unknown;
  if (d && typeof d === 'object' && 'name' in d) {
    const fn = (d as { name: string }).name;
    if (['uuid', 'cuid', 'nanoid', 'ulid'].includes(fn)) return { present: false }; // made by the client
    if (fn === 'autoincrement') return { present: true, startsWith: 'nextval(' };
    if (fn === 'now') return { present: true, startsWith: 'CURRENT_TIMESTAMP' };
    return { present: true };
  }
  if (typeof d === 'number' || typeof d === 'boolean') return { present: true, startsWith: String(d) };
  if (typeof d === 'string') return { present: true, startsWith: `'${d.replace(/'/g, "''")}'` };
  return { present: true };
}

/** Prisma's default constraint / index names (identifiers are at most 63 bytes in PostgreSQL). */
function defaultName(table: string, columns: string[], suffix: 'pkey' | 'key' | 'idx' | 'fkey'): string {
  if (suffix === 'pkey') return `${table}_pkey`;
  const full = `${table}_${columns.join('_')}_${suffix}`;
  if (full.length <= 63) return full;
  return `${full.slice(0, 63 - suffix.length - 1)}_${suffix}`;
}

const ACTION_SQL: Record<string, string> = {
  Cascade: 'CASCADE',
  Restrict: 'RESTRICT',
  NoAction: 'NO ACTION',
  SetNull: 'SET NULL',
  SetDefault: 'SET DEFAULT',
};

// --- the database as it is ------------------------------------------------------------------

interface DbColumn {
  table: string;
  column: string;
  udt: string;
  nullable: boolean;
  default: string | null;
  precision: number | null;
  length: number | null;
  numPrecision: number | null;
  numScale: number | null;
}

async function inspect(client: pg.Client) {
  const columns = (
    await client.query<{
      table_name: string;
      column_name: string;
      udt_name: string;
      is_nullable: string;
      column_default: string | null;
      datetime_precision: number | null;
      character_maximum_length: number | null;
      numeric_precision: number | null;
      numeric_scale: number | null;
    }>(
      `SELECT c.table_name, c.column_name, c.udt_name, c.is_nullable, c.column_default, c.datetime_precision,
              c.character_maximum_length, c.numeric_precision, c.numeric_scale
         FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`,
    )
  ).rows.map<DbColumn>((r) => ({
    table: r.table_name,
    column: r.column_name,
    udt: r.udt_name,
    nullable: r.is_nullable === 'YES',
    default: r.column_default,
    precision: r.datetime_precision,
    length: r.character_maximum_length,
    numPrecision: r.numeric_precision,
    numScale: r.numeric_scale,
  }));
  const tables = (
    await client.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
  ).rows.map((r) => r.table_name);
  const indexes = (
    await client.query<{ name: string; table: string; unique: boolean; primary: boolean; columns: string[] }>(
      `SELECT i.relname AS name, t.relname AS table, ix.indisunique AS unique, ix.indisprimary AS primary,
              array(SELECT a.attname || CASE WHEN (o.opt & 1) = 1 THEN ' DESC' ELSE '' END
                      FROM unnest(ix.indkey::int2[], ix.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
                      CROSS JOIN LATERAL (SELECT k.opt) o
                      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                     ORDER BY k.ord)::text[] AS columns
         FROM pg_index ix
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = current_schema() AND t.relname <> '_prisma_migrations'`,
    )
  ).rows;
  const foreignKeys = (
    await client.query<{
      name: string;
      table: string;
      columns: string[];
      ref_table: string;
      ref_columns: string[];
      on_delete: string;
      on_update: string;
    }>(
      `SELECT con.conname AS name, t.relname AS table, rt.relname AS ref_table,
              array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.ord)::text[] AS columns,
              array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, ord)
                      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.ord)::text[] AS ref_columns,
              rc.delete_rule AS on_delete, rc.update_rule AS on_update
         FROM pg_constraint con
         JOIN pg_class t ON t.oid = con.conrelid
         JOIN pg_class rt ON rt.oid = con.confrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         JOIN information_schema.referential_constraints rc
           ON rc.constraint_schema = n.nspname AND rc.constraint_name = con.conname
        WHERE con.contype = 'f' AND n.nspname = current_schema()`,
    )
  ).rows;
  return { tables, columns, indexes, foreignKeys };
}

/** Every difference between the Prisma schema and the migrated database, as readable lines. */
async function drift(datamodel: Datamodel, client: pg.Client): Promise<string[]> {
  const db = await inspect(client);
  const problems: string[] = [];
  const tableOf = (m: DmmfModel): string => m.dbName ?? m.name;
  const columnOf = (m: DmmfModel, field: string): string => {
    const f = m.fields.find((x) => x.name === field);
    return f?.dbName ?? field;
  };

  const expectedTables = new Set(datamodel.models.map(tableOf));
  // Prisma's bookkeeping, and the job queue's tables, which Agenda creates itself (batch/agenda.ts)
  const foreign = new Set(['_prisma_migrations', 'agenda_jobs', 'agenda_logs']);
  for (const t of db.tables) {
    if (!foreign.has(t) && !expectedTables.has(t)) problems.push(`table ${t} is in the database but in no model`);
  }

  for (const m of datamodel.models) {
    const table = tableOf(m);
    if (!db.tables.includes(table)) {
      problems.push(`model ${m.name}: table ${table} is missing (no migration creates it)`);
      continue;
    }
    const scalars = m.fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum');
    const dbCols = db.columns.filter((c) => c.table === table);
    for (const c of dbCols) {
      if (!scalars.some((f) => (f.dbName ?? f.name) === c.column)) {
        problems.push(`${table}.${c.column} is in the database but not in model ${m.name}`);
      }
    }
    for (const f of scalars) {
      const colName = f.dbName ?? f.name;
      const col = dbCols.find((c) => c.column === colName);
      const where = `${m.name}.${f.name} (${table}.${colName})`;
      if (!col) {
        problems.push(`${where}: column is missing (no migration adds it)`);
        continue;
      }
      const want = expectedType(f, datamodel.enums);
      if (col.udt !== want.udt) problems.push(`${where}: type ${col.udt}, schema wants ${want.udt}`);
      if (want.precision !== undefined && col.precision !== want.precision) {
        problems.push(`${where}: precision ${col.precision}, schema wants ${want.precision}`);
      }
      if (want.length !== undefined && col.length !== want.length) {
        problems.push(`${where}: length ${col.length}, schema wants ${want.length}`);
      }
      if (want.numeric && (col.numPrecision !== want.numeric[0] || col.numScale !== want.numeric[1])) {
        problems.push(`${where}: numeric(${col.numPrecision},${col.numScale}), schema wants numeric(${want.numeric.join(',')})`);
      }
      if (col.nullable !== !f.isRequired) {
        problems.push(
          `${where}: ${col.nullable ? 'NULL' : 'NOT NULL'} in the database, schema says ${f.isRequired ? 'required' : 'optional'}`,
        );
      }
      const def = expectedDefault(f);
      if (def.present !== (col.default !== null)) {
        problems.push(`${where}: database default ${col.default ?? 'none'}, schema ${def.present ? 'has a default' : 'has none'}`);
      } else if (def.startsWith && !col.default!.startsWith(def.startsWith)) {
        problems.push(`${where}: database default ${col.default}, schema wants ${def.startsWith}…`);
      }
    }

    // primary key, unique constraints and indexes
    const tableIndexes = db.indexes.filter((i) => i.table === table);
    const wantIndexes = datamodel.indexes
      .filter((i) => i.model === m.name)
      .map((i) => {
        const cols = i.fields.map((x) => columnOf(m, x.name));
        const suffix = i.type === 'id' ? 'pkey' : i.type === 'unique' ? 'key' : 'idx';
        return {
          name: i.dbName ?? defaultName(table, cols, suffix),
          primary: i.type === 'id',
          unique: i.type !== 'normal',
          columns: i.fields.map((x, k) => cols[k] + (x.sortOrder === 'desc' ? ' DESC' : '')),
        };
      });
    for (const want of wantIndexes) {
      const got = tableIndexes.find((i) => i.name === want.name);
      if (!got) {
        problems.push(
          `${table}: ${want.primary ? 'primary key' : want.unique ? 'unique index' : 'index'} ${want.name} (${want.columns.join(', ')}) is missing`,
        );
        continue;
      }
      if (got.primary !== want.primary || got.unique !== want.unique || got.columns.join(',') !== want.columns.join(',')) {
        problems.push(
          `${table}: index ${want.name} is ${got.unique ? 'unique ' : ''}(${got.columns.join(', ')}), schema wants ${want.unique ? 'unique ' : ''}(${want.columns.join(', ')})`,
        );
      }
    }
    for (const got of tableIndexes) {
      if (!wantIndexes.some((w) => w.name === got.name))
        problems.push(`${table}: index ${got.name} is in the database but not in the schema`);
    }

    // foreign keys
    const wantFks = m.fields
      .filter((f) => f.kind === 'object' && f.relationFromFields && f.relationFromFields.length > 0)
      .map((f) => {
        const target = datamodel.models.find((x) => x.name === f.type)!;
        const cols = f.relationFromFields!.map((n) => columnOf(m, n));
        const fromRequired = f.relationFromFields!.every((n) => m.fields.find((x) => x.name === n)?.isRequired);
        return {
          name: defaultName(table, cols, 'fkey'),
          columns: cols,
          refTable: tableOf(target),
          refColumns: f.relationToFields!.map((n) => columnOf(target, n)),
          onDelete: ACTION_SQL[f.relationOnDelete ?? (fromRequired ? 'Restrict' : 'SetNull')],
          onUpdate: ACTION_SQL[f.relationOnUpdate ?? 'Cascade'],
        };
      });
    const tableFks = db.foreignKeys.filter((k) => k.table === table);
    for (const want of wantFks) {
      const got = tableFks.find((k) => k.name === want.name);
      const describe = (k: {
        columns: string[];
        ref_table?: string;
        refTable?: string;
        ref_columns?: string[];
        refColumns?: string[];
        on_delete?: string;
        onDelete?: string;
        on_update?: string;
        onUpdate?: string;
      }) =>
        `(${k.columns.join(', ')}) -> ${k.ref_table ?? k.refTable}(${(k.ref_columns ?? k.refColumns)!.join(', ')}) ON DELETE ${k.on_delete ?? k.onDelete} ON UPDATE ${k.on_update ?? k.onUpdate}`;
      if (!got) problems.push(`${table}: foreign key ${want.name} ${describe(want)} is missing`);
      else if (describe(got) !== describe(want))
        problems.push(`${table}: foreign key ${want.name} is ${describe(got)}, schema wants ${describe(want)}`);
    }
    for (const got of tableFks) {
      if (!wantFks.some((w) => w.name === got.name))
        problems.push(`${table}: foreign key ${got.name} is in the database but not in the schema`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------

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
    const datamodel = getDatamodel(readFileSync(SCHEMA_FILE, 'utf8'));
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
