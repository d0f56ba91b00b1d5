import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolated, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/** `npm run demo -- --watch`: the summary, then the console's URL with an admin token, and the server kept up. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let iso: Isolated;
beforeAll(async () => {
  iso = await isolated('demo-watch');
});
afterAll(async () => {
  await iso?.cleanup();
});

describe('demo --watch', () => {
  it('prints the console URL with a working admin token and keeps the server up until Ctrl-C', async () => {
    const demo = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/demo.ts', '--watch', '--users', '60', '--stock', '5', '--connections', '8'],
      {
        cwd: ROOT,
        env: { ...process.env, ...iso.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    demo.stdout!.on('data', (d) => (out += d));
    demo.stderr!.on('data', (d) => (out += d));
    try {
      const url = await waitUntil(
        async () => /(http:\/\/127\.0\.0\.1:\d+)\/console#token=(\S+)/.exec(out),
        (m) => m !== null || demo.exitCode !== null,
        { what: 'the console URL printed', timeoutMs: 120_000, everyMs: 200 },
      );
      expect(url, out).not.toBeNull();
      const [, base, adminToken] = url!;
      expect(out).toContain('all invariants hold');

      const page = await fetch(`${base}/console`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('drop console');
      // the token is an admin's: the campaigns list (Postgres read side) answers it
      const campaign = /campaign (demo-[0-9a-f]+)/.exec(out)![1];
      const listed = await waitUntil(
        async () =>
          (await fetch(`${base}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
            body: JSON.stringify({ query: '{ campaigns(first: 10) { edges { node { id winners } } } }' }),
          }).then((r) => r.json())) as { data?: { campaigns: { edges: { node: { id: string; winners: number } }[] } } },
        (r) => r.data?.campaigns.edges.some((e) => e.node.id === campaign && e.node.winners === 5) ?? false,
        { what: `${campaign} listed with its 5 winners` },
      );
      expect(listed.data!.campaigns.edges.map((e) => e.node.id)).toContain(campaign);
      // still up after the summary
      expect(demo.exitCode).toBeNull();

      const exited = once(demo, 'exit');
      demo.kill('SIGINT');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    } finally {
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
  });
});
