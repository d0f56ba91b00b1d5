import { fileURLToPath } from 'node:url';

/**
 * The receipt check's script (`/console/fairness.js`): src/domain/fairness/verify.ts, the same
 * verifier `npm run verify` runs, bundled for the browser by esbuild (already the toolchain's,
 * through tsx) the first time a page asks for it. node:crypto becomes ./browser/crypto.ts and
 * Buffer the `buffer` package; nothing else of the library changes, so the page and the CLI cannot
 * disagree about a receipt.
 */
const at = (name: string) => fileURLToPath(new URL(`./browser/${name}`, import.meta.url));

let bundle: Promise<Buffer> | null = null;

export function fairnessBundle(): Promise<Buffer> {
  bundle ??= build().catch((err: unknown) => {
    bundle = null; // a failed build is tried again on the next request
    throw err;
  });
  return bundle;
}

async function build(): Promise<Buffer> {
  // loaded only when a page asks: processes that never serve the console never start esbuild
  const esbuild = await import('esbuild');
  const crypto = at('crypto.ts');
  const out = await esbuild.build({
    entryPoints: [at('entry.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    inject: [at('buffer.ts')],
    plugins: [
      {
        name: 'node-crypto-for-the-browser',
        setup(b) {
          b.onResolve({ filter: /^(node:)?crypto$/ }, () => ({ path: crypto }));
        },
      },
    ],
  });
  return Buffer.from(out.outputFiles[0]!.contents);
}
