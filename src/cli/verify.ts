import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { entryOfFile, verifyReceipt, type PublishedFairness } from '../domain/fairness/verify.js';

/**
 * `npm run verify -- --receipt receipt.json [--url BASE]`: checks a receipt (the owner's `myEntry`
 * with its receipt, as JSON) against the campaign's published heads, leaves and final head, and the
 * published keys. Nothing here trusts the server beyond what it signed: every check is redone.
 * Exit 0 when every check holds, 1 when one fails (named), 2 when the inputs cannot be read.
 */
const program = new Command()
  .name('verify')
  .description('checks a firstcome receipt against the campaign’s published heads and final head')
  .requiredOption(
    '--receipt <files...>',
    'the receipt: the JSON of myEntry { campaignId userId ticket position status receipt { … } } (several: each is checked)',
  )
  .option(
    '--url <base>',
    'the server whose /fairness/<id> and /.well-known/firstcome-fairness.json are read',
    `http://127.0.0.1:${process.env.PORT ?? 4000}`,
  )
  .option('--fairness <file>', 'read the campaign’s published proofs from this file (the body of /fairness/<id>) instead of the server')
  .option('--keys <file>', 'trust these keys (a saved /.well-known/firstcome-fairness.json) instead of the server’s current ones')
  .option('--json', 'print the verdict as JSON')
  .addHelpText('after', '\nExit: 0 the receipt holds, 1 a check failed (named), 2 the inputs could not be read.')
  .parse();

const opts = program.opts<{ receipt: string[]; url: string; fairness?: string; keys?: string; json?: boolean }>();

async function readJson(what: string, source: { file?: string; url?: string }): Promise<unknown> {
  try {
    if (source.file) return JSON.parse(await readFile(source.file, 'utf8'));
    const res = await fetch(source.url!, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await res.json();
  } catch (err) {
    console.error(`verify: cannot read ${what} (${source.file ?? source.url}): ${(err as Error).message}`);
    process.exit(2);
  }
}

const base = opts.url.replace(/\/+$/, '');
/** the published proofs and keys, read once per campaign */
const proofs = new Map<string, { published: PublishedFairness; keys: Map<string, string> }>();
async function proofsOf(campaignId: string) {
  let p = proofs.get(campaignId);
  if (!p) {
    const published = (await readJson('the published proofs', {
      file: opts.fairness,
      url: `${base}/fairness/${encodeURIComponent(campaignId)}`,
    })) as PublishedFairness;
    const doc = (await readJson('the published keys', { file: opts.keys, url: `${base}/.well-known/firstcome-fairness.json` })) as {
      keys?: { keyId: string; publicKey: string }[];
    };
    p = { published, keys: new Map((doc.keys ?? []).map((k) => [k.keyId, k.publicKey])) };
    proofs.set(campaignId, p);
  }
  return p;
}

let failed = 0;
const verdicts = [];
for (const file of opts.receipt) {
  const entry = entryOfFile(await readJson('the receipt', { file }));
  if (!entry) {
    console.error(`verify: ${file} holds no entry (expected myEntry { campaignId userId ticket position status receipt { … } })`);
    process.exit(2);
  }
  const { published, keys } = await proofsOf(entry.campaignId);
  const verdict = verifyReceipt(entry, published, keys);
  if (!verdict.ok) failed++;
  verdicts.push({ file, ...verdict });
  if (opts.json) continue;
  if (opts.receipt.length > 1) console.log(`${file}:`);
  for (const c of verdict.checks) console.log(`${c.ok ? '✓' : '✗'} ${c.name.padEnd(15)} ${c.detail}`);
  console.log(verdict.ok ? `the receipt holds (${entry.campaignId}, position ${entry.position})` : 'THE RECEIPT DOES NOT HOLD');
}
if (opts.json) console.log(JSON.stringify(opts.receipt.length === 1 ? verdicts[0] : verdicts, null, 2));
else if (opts.receipt.length > 1) console.log(`${opts.receipt.length - failed} of ${opts.receipt.length} receipts hold`);
process.exit(failed === 0 ? 0 : 1);
