import { signToken, tokenShape } from '../api/auth.js';
import type { Config } from '../config.js';
import { EXIT } from './progress.js';

const say = (s: string) => process.stdout.write(`${s}\n`);

/**
 * `--watch`: the server stays up for a person to look at the drop in the console. The admin token
 * rides in the URL's fragment, which the browser never sends to a server (nor to its logs).
 */
export async function watch(
  config: Config,
  base: string,
  campaign: string,
  stop: () => Promise<void>,
  serverExit: () => number | null,
  ok: boolean,
): Promise<never> {
  const token = await signToken(config.JWT_SECRET, { sub: 'demo-admin', role: 'admin', expiresIn: '12h' }, tokenShape(config));
  say(`\n6. the drop console (the server stays up; Ctrl-C stops it)`);
  say(`   ${base}/console#token=${token}`);
  say(`   campaign ${campaign} is in its list; the admin token is valid for 12 hours`);
  process.removeAllListeners('SIGINT');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stop().then(() => process.exit(ok ? 0 : 1)));
  for (;;) {
    const exit = serverExit();
    if (exit !== null) {
      say(`the server exited (${exit})`);
      process.exit(EXIT.failed);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
