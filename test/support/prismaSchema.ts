import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** prisma/schema.prisma, the models the migrations must build. */
export const SCHEMA_FILE = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Prisma's own schema parser, offline. `@prisma/internals` is not installed and the generated
// Prisma 7 client no longer exposes `Prisma.dmmf`, but the `prisma` CLI package ships the
// prisma-schema WebAssembly module it uses for getDMMF. Its wasm-bindgen glue is bundled inside
// the CLI, so the few lines of glue needed for `get_dmmf` are reproduced here.
// ---------------------------------------------------------------------------------------------

export interface DmmfField {
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
export interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
  primaryKey: { name: string | null; fields: string[] } | null;
}
export interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  dbName?: string | null;
  fields: Array<{ name: string; sortOrder?: 'asc' | 'desc' }>;
}
export interface Datamodel {
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

export function getDatamodel(schemaText: string): Datamodel {
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

/** The datamodel of prisma/schema.prisma. */
export function schemaDatamodel(): Datamodel {
  return getDatamodel(readFileSync(SCHEMA_FILE, 'utf8'));
}
