import { once } from 'node:events';
import { createServer } from 'node:http';
import { Command } from 'commander';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createAuthenticator, signToken, verifyToken } from '../src/api/auth.js';
import { table } from '../src/cli/crowd.js';
import { loadConfig } from '../src/config.js';

/**
 * `npm run bench:verify`: CPU per token verify on the request path, for each kind of token the
 * server accepts: HS256 (JWT_SECRET) and RS256 / ES256 from a JWKS (served here over HTTP, the keys
 * cached after the first verify). CPU time, not wall time: it holds up on a shared machine.
 */
const opts = new Command()
  .option('--tokens <n>', 'distinct tokens per kind', (v) => Number(v), 20_000)
  .parse()
  .opts<{ tokens: number }>();

const SECRET = 'bench-verify-secret-0123456789';

async function main() {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const jwks = JSON.stringify({
    keys: [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec', alg: 'ES256', use: 'sig' },
    ],
  });
  const idp = createServer((_, res) => res.end(jwks));
  idp.listen(0, '127.0.0.1');
  await once(idp, 'listening');
  const config = loadConfig({
    ...process.env,
    JWT_SECRET: SECRET,
    JWT_JWKS_URL: `http://127.0.0.1:${(idp.address() as { port: number }).port}/jwks.json`,
  });
  const auth = createAuthenticator(config);
  const n = opts.tokens;
  const subs = Array.from({ length: n }, (_, i) => `u${i}`);
  process.stdout.write(`signing ${n} tokens of each kind… `);
  const kinds: [string, string[]][] = [
    ['HS256', await Promise.all(subs.map((sub) => signToken(SECRET, { sub, expiresIn: '1h' })))],
    [
      'RS256 (JWKS, 2048-bit)',
      await Promise.all(
        subs.map((sub) =>
          new SignJWT({ sub }).setProtectedHeader({ alg: 'RS256', kid: 'rsa' }).setExpirationTime('1h').sign(rsa.privateKey),
        ),
      ),
    ],
    [
      'ES256 (JWKS, P-256)',
      await Promise.all(
        subs.map((sub) => new SignJWT({ sub }).setProtectedHeader({ alg: 'ES256', kid: 'ec' }).setExpirationTime('1h').sign(ec.privateKey)),
      ),
    ],
  ];
  process.stdout.write('done\n');

  const measure = async (verify: (t: string) => Promise<unknown>, tokens: string[]) => {
    // warm-up: the JIT, and the JWKS fetched once
    for (const t of tokens.slice(0, 500)) if (!(await verify(t))) throw new Error('a good token was refused');
    const cpu0 = process.cpuUsage();
    for (const t of tokens) await verify(t);
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / tokens.length;
  };
  const rows: string[][] = [];
  const legacy = await measure((t) => verifyToken(t, SECRET), kinds[0]![1]);
  rows.push(['HS256, before (verifyToken)', legacy.toFixed(1)]);
  for (const [name, tokens] of kinds) rows.push([name, (await measure((t) => auth.verify(t), tokens)).toFixed(1)]);
  process.stdout.write(`${table([['verify', 'CPU µs per token'], ...rows])}\n`);
  auth.close();
  idp.close();
}

await main();
