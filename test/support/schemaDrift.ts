import pg from 'pg';
import type { Datamodel, DmmfField, DmmfModel } from './prismaSchema.js';

/**
 * The schema inspector of the drift test (test/integration/prisma-migrations.int.spec.ts): what PostgreSQL
 * should hold for each field, index and relation of the Prisma schema (prismaSchema.ts reads it
 * with Prisma's own parser), held against what the migrated database does hold.
 */

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
export async function drift(datamodel: Datamodel, client: pg.Client): Promise<string[]> {
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
