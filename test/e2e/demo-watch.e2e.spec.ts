import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolated, type Isolated } from '../support/app.js';
import { spawnDemo } from '../support/demo.js';
import { waitUntil } from '../support/wait.js';

/** `npm run demo -- --watch`: the summary, then the console's URL with an admin token, and the server kept up. */
let iso: Isolated;
beforeAll(async () => {
  iso = await isolated('demo-watch');
});
afterAll(async () => {
  await iso?.cleanup();
});

describe('demo --watch', () => {
  it('prints the console URL with a working admin token and keeps the server up until Ctrl-C', async () => {
    const { child: demo, output } = spawnDemo(['--watch', '--users', '60', '--stock', '5', '--connections', '8'], iso.env);
    try {
      const url = await waitUntil(
        async () => /(http:\/\/127\.0\.0\.1:\d+)\/console#token=(\S+)/.exec(output()),
        (m) => m !== null || demo.exitCode !== null,
        { what: 'the console URL printed', timeoutMs: 120_000, everyMs: 200 },
      );
      expect(url, output()).not.toBeNull();
      const [, base, adminToken] = url!;
      expect(output()).toContain('all invariants hold');

      const page = await fetch(`${base}/console`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('drop console');
      // the token is an admin's: the campaigns list (Postgres read side) answers it
      const campaign = /campaign (demo-[0-9a-f]+)/.exec(output())![1];
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
