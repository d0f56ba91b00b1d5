/**
 * `npm run docs:config`: writes docs/configuration.md from src/configSchema.ts, so the page cannot drift
 * from the loader. `npm run docs:config -- --check` only compares, and exits 1 when they differ.
 *
 * It reads the source, not the running schema: each variable is an entry of `const schema =
 * z.object({ … })` at two spaces of indentation, with the JSDoc comment right above it as its
 * description and its `.default(…)` (or `limit(…)`) as its default. A variable without a comment
 * stops the script, so a new variable cannot land undocumented.
 * test/unit/docs-config.unit.spec.ts fails when the page and the source disagree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CONFIG_SOURCE = path.join(root, 'src/configSchema.ts');
export const CONFIG_DOC = path.join(root, 'docs/configuration.md');

export interface ConfigVariable {
  name: string;
  description: string;
  /** as the page shows it: `4000`, `unset`, … */
  defaultValue: string;
  /** the values a `z.enum` allows, when it is one */
  values?: string[];
}

const ENTRY = /^ {2}([A-Z][A-Z0-9_]*): (.*)$/;

/** The variables of src/configSchema.ts's schema, in source order. */
export function parseConfigSource(source: string): ConfigVariable[] {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => l.startsWith('export const schema = z.object({'));
  const end = lines.findIndex((l, i) => i > start && l.startsWith('});'));
  if (start < 0 || end < 0) throw new Error('src/configSchema.ts: `export const schema = z.object({ … });` not found');

  const vars: ConfigVariable[] = [];
  for (let i = start + 1; i < end; i++) {
    const m = ENTRY.exec(lines[i]!);
    if (!m) continue;
    const name = m[1]!;
    // the entry runs until the next line at two spaces of indentation
    let j = i + 1;
    while (j < end && !/^ {2}\S/.test(lines[j]!)) j++;
    const body = [m[2]!, ...lines.slice(i + 1, j)].join('\n');
    const description = commentAbove(lines, i);
    if (!description) throw new Error(`src/configSchema.ts: ${name} has no JSDoc comment; say what it does`);
    vars.push({ name, description, defaultValue: defaultOf(body), values: enumValues(body) });
  }
  return vars;
}

/** The JSDoc comment that ends on the line above `i`, as one paragraph. */
function commentAbove(lines: string[], i: number): string | undefined {
  const last = lines[i - 1]?.trim();
  if (!last?.endsWith('*/')) return undefined;
  let k = i - 1;
  while (k >= 0 && !lines[k]!.trim().startsWith('/**')) k--;
  if (k < 0) return undefined;
  return lines
    .slice(k, i)
    .map((l) =>
      l
        .trim()
        .replace(/^\/\*\*\s?/, '')
        .replace(/\s?\*\/$/, '')
        .replace(/^\*\s?/, ''),
    )
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function defaultOf(body: string): string {
  const arg = callArgument(body, '.default(') ?? callArgument(body, 'limit(');
  if (arg === undefined) return 'unset';
  const s = /^'([^']*)'$/.exec(arg);
  if (s) return s[1]!;
  // a number written with separators or as a product: 64 * 1024, 24 * 7, 30_000
  if (/^[\d_\s*]+$/.test(arg)) {
    return String(
      arg
        .split('*')
        .map((n) => Number(n.replace(/[_\s]/g, '')))
        .reduce((a, b) => a * b, 1),
    );
  }
  throw new Error(`src/configSchema.ts: a default this script cannot read: ${arg}`);
}

/** The text between `open`'s parenthesis and the one that closes it, or undefined. */
function callArgument(body: string, open: string): string | undefined {
  const at = body.indexOf(open);
  if (at < 0) return undefined;
  let depth = 1;
  const from = at + open.length;
  for (let k = from; k < body.length; k++) {
    if (body[k] === '(') depth++;
    else if (body[k] === ')' && --depth === 0) return body.slice(from, k).trim();
  }
  return undefined;
}

function enumValues(body: string): string[] | undefined {
  const m = /z\.enum\(\[([^\]]*)\]\)/.exec(body);
  return m ? [...m[1]!.matchAll(/'([^']*)'/g)].map((v) => v[1]!) : undefined;
}

const WIDTH = 100;

function wrap(text: string): string {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > WIDTH) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.join('\n');
}

/** A Markdown table padded as Prettier pads one, so `prettier --check` accepts the page. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => x.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

const HEADER = `# Configuration

<!-- Generated from src/configSchema.ts by \`npm run docs:config\`; edit the comments there, not this page. -->

firstcome is configured by environment variables only. Every one has a local default, so
\`npm start\` runs with none set. \`src/config.ts\` checks them all when a process starts: a bad
value stops it with exit code 2 and the variable named, never later on the hot path. An empty
value counts as unset for the optional ones.

Where the variables of an area are explained at more length: tokens, browsers, budgets and
query limits in [api.md](api.md#the-edge-tokens-browsers-floods-query-limits) and
[api.md](api.md#live-answers-subscriptions); the cluster in
[operations.md](operations.md#running-on-a-cluster); \`KAFKA_COMPRESSION\` in
[design.md](design.md#compression-of-the-log).

Each entry below is the variable's comment in \`src/configSchema.ts\`, with its default.
`;

/** docs/configuration.md's text for this source of src/configSchema.ts. */
export function renderConfigDoc(source: string): string {
  const vars = parseConfigSource(source);
  const sections = vars.map((v) => {
    const facts = [`Default: ${v.defaultValue === 'unset' ? 'unset' : `\`${v.defaultValue}\``}.`];
    if (v.values) facts.push(`One of ${v.values.map((x) => `\`${x}\``).join(', ')}.`);
    return `## \`${v.name}\`\n\n${facts.join(' ')}\n\n${wrap(v.description)}\n`;
  });
  const rows = vars.map((v) => [
    `[\`${v.name}\`](#${v.name.toLowerCase()})`,
    v.defaultValue === 'unset' ? 'unset' : `\`${v.defaultValue}\``,
  ]);
  const index = table(['variable', 'default'], rows);
  return [HEADER, index, ...sections].join('\n');
}

function main(argv: string[]): number {
  const text = renderConfigDoc(fs.readFileSync(CONFIG_SOURCE, 'utf8'));
  const rel = path.relative(root, CONFIG_DOC);
  if (argv.includes('--check')) {
    const current = fs.existsSync(CONFIG_DOC) ? fs.readFileSync(CONFIG_DOC, 'utf8') : '';
    if (current === text) return 0;
    console.error(`${rel} differs from src/config.ts: run \`npm run docs:config\``);
    return 1;
  }
  fs.writeFileSync(CONFIG_DOC, text);
  console.log(`wrote ${rel}`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
