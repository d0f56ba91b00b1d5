import { readFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { signToken, tokenShape } from '../api/auth.js';
import { CAMPAIGN_ID } from '../api/guards.js';
import { loadConfig } from '../config.js';
import { MAX_CODES_PER_CHUNK } from '../domain/inventory.js';

/**
 * `npm run codes:load -- --campaign ID --file codes.csv [--chunk-size 1000]`: loads a brand's codes
 * into an INVENTORY campaign through the API's `loadCodes`, one chunk a call, with a progress bar
 * and a summary that names the lines of duplicates. Resumable: each chunk's id is the hash of its
 * codes (the server derives it), so a rerun with the same file and chunk size loads nothing twice.
 * No code is printed.
 */
const program = new Command()
  .name('codes:load')
  .description("loads a brand's codes (one a line; in a CSV, the first column; a header `code` is skipped) into an INVENTORY campaign")
  .requiredOption('--campaign <id>', 'the INVENTORY campaign')
  .requiredOption('--file <path>', 'the codes, one a line')
  .option('--chunk-size <n>', `codes a call, 1..${MAX_CODES_PER_CHUNK}`, String(MAX_CODES_PER_CHUNK))
  .option('--url <base>', 'the API (default http://127.0.0.1:$PORT)')
  .option('--token <jwt>', 'an admin token (default: FIRSTCOME_TOKEN, else one signed with JWT_SECRET)')
  .addHelpText('after', '\nExit: 0 every chunk loaded, 1 a chunk failed (rerun to resume: loaded chunks are not loaded again).')
  .parse();

const opts = program.opts<{ campaign: string; file: string; chunkSize: string; url?: string; token?: string }>();
if (!CAMPAIGN_ID.test(opts.campaign)) program.error('--campaign must match [a-z0-9-]{1,64}');
const size = Number(opts.chunkSize);
if (!Number.isInteger(size) || size < 1 || size > MAX_CODES_PER_CHUNK) program.error(`--chunk-size must be 1..${MAX_CODES_PER_CHUNK}`);

const config = loadConfig();
const base = (opts.url ?? `http://127.0.0.1:${config.PORT}`).replace(/\/+$/, '');
const token =
  opts.token ??
  process.env.FIRSTCOME_TOKEN ??
  (await signToken(config.JWT_SECRET, { sub: 'codes-loader', role: ['admin'], expiresIn: '1h' }, tokenShape(config)));

/** The codes of the file with their line numbers (1-based): blank lines and a `code` header left out. */
export function codesOf(text: string): { code: string; line: number }[] {
  const out: { code: string; line: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const code = (raw.split(',')[0] ?? '').trim().replace(/^"(.*)"$/, '$1');
    if (code === '' || (i === 0 && code.toLowerCase() === 'code')) return;
    out.push({ code, line: i + 1 });
  });
  return out;
}

const LOAD = `mutation($c: ID!, $codes: [String!]!) { loadCodes(campaignId: $c, codes: $codes) { loaded duplicates total duplicateIndexes } }`;
type Answer = { loaded: number; duplicates: number; total: number; duplicateIndexes: number[] };

/** One chunk, retried while the API says to retry (UNAVAILABLE, RATE_LIMITED, a lost connection). */
async function loadChunk(codes: string[]): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    let retry: string;
    try {
      const res = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: LOAD, variables: { c: opts.campaign, codes } }),
        signal: AbortSignal.timeout(60_000),
      });
      const body = (await res.json()) as {
        data?: { loadCodes: Answer } | null;
        errors?: { message: string; extensions?: { code?: string } }[];
      };
      const err = body.errors?.[0];
      if (!err && body.data) return body.data.loadCodes;
      const code = err?.extensions?.code ?? `HTTP ${res.status}`;
      if (code !== 'UNAVAILABLE' && code !== 'RATE_LIMITED') throw new Error(`${code}: ${err?.message ?? 'no answer'}`);
      retry = code;
    } catch (err) {
      if (err instanceof Error && /^[A-Z_]+: /.test(err.message)) throw err;
      retry = (err as Error).message;
    }
    if (attempt >= 6) throw new Error(`gave up after ${attempt} tries (${retry})`);
    await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
  }
}

const codes = codesOf(await readFile(opts.file, 'utf8'));
if (codes.length === 0) program.error(`${opts.file} holds no code`);
const bar = new cliProgress.SingleBar(
  { format: 'codes:load [{bar}] {value}/{total} codes | loaded {loaded} | duplicates {dups}', hideCursor: true, stream: process.stderr },
  cliProgress.Presets.shades_classic,
);
bar.start(codes.length, 0, { loaded: 0, dups: 0 });
let loaded = 0;
let total = 0;
const dupLines: number[] = [];
let failed: Error | null = null;
for (let from = 0; from < codes.length; from += size) {
  const chunk = codes.slice(from, from + size);
  try {
    const a = await loadChunk(chunk.map((c) => c.code));
    loaded += a.loaded;
    total = a.total;
    for (const i of a.duplicateIndexes) dupLines.push(chunk[i]!.line);
  } catch (err) {
    failed = new Error(`the chunk of lines ${chunk[0]!.line}-${chunk.at(-1)!.line} failed: ${(err as Error).message}`);
    break;
  }
  bar.update(from + chunk.length, { loaded, dups: dupLines.length });
}
bar.stop();
console.log(`campaign ${opts.campaign}: ${loaded} loaded, ${dupLines.length} duplicates, ${total} codes held now`);
if (dupLines.length > 0) {
  const shown = dupLines.slice(0, 50).join(', ');
  console.log(
    `duplicates (given before, or twice in the file) on lines: ${shown}${dupLines.length > 50 ? ` … and ${dupLines.length - 50} more` : ''}`,
  );
}
if (failed) {
  console.error(`codes:load: ${failed.message}; rerun the same command to resume (loaded chunks are not loaded again)`);
  process.exit(1);
}
