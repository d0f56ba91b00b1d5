import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProviderSim, type ProviderSim } from '../../src/provider-sim/server.js';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';
import { waitUntil } from '../support/wait.js';

/**
 * The console's panels in a real headless Chromium: the receipt check (the fairness library run in
 * the page) on a real receipt from a real drop and on tampered copies of it; an INVENTORY drop's
 * codes loaded, issued and short; and the provider's circuit breaker while the provider simulator
 * is down. One server process with every role these need.
 */
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const CREATE = `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`;
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection } }`;
const MY = `query($c: ID!) { myEntry(campaignId: $c) { campaignId userId ticket position status
  receipt { leafIndex leaf nonce inclusionProof head { campaignId size root at keyId signature } } } }`;
const LOAD = `mutation($c: ID!, $codes: [String!]!) { loadCodes(campaignId: $c, codes: $codes) { loaded total } }`;
const closesAt = () => new Date(Date.now() + 3_600_000).toISOString();

if (!CHROMIUM)
  console.log(
    'console-panels.e2e skipped: no Chromium at CHROMIUM_PATH, /usr/bin/chromium or /usr/bin/chromium-browser (apt-get install -y chromium)',
  );

describe.skipIf(!CHROMIUM)('the console’s receipt check, codes and breaker panels', () => {
  let iso: Isolated;
  let sim: ProviderSim;
  let app: AppProcess;
  let browser: Browser;
  let page: Page;
  let admin: string;
  const errors: string[] = [];

  beforeAll(async () => {
    iso = await isolated('console-panels');
    // the provider is down from the start: only the PROVIDER drop, last, calls it
    sim = await startProviderSim({ port: 0, latencyMs: 2, rate: 0, errorRate: 0, timeoutRate: 0, permanentRate: 0, down: true });
    app = await spawnApp(iso, 'api,writer,projector,issuer', {
      PROVIDER_URL: sim.url,
      PROVIDER_TIMEOUT_MS: '300',
      PROVIDER_BREAKER_OPEN_MS: '500',
      // enough attempts that the outage parks nobody: the breaker, not parking, is under test
      PROVIDER_MAX_ATTEMPTS: '100',
    });
    admin = await token('panels-admin', 'admin');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${app.port}/console`);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.kill();
    await sim?.close();
    await iso?.cleanup();
  });

  async function drop(id: string, stock: number, users: number, extra: Record<string, unknown> = {}) {
    const r = await gql(app.port, admin, CREATE, { i: { id, title: id, reward: 'Voucher', stock, closesAt: closesAt(), ...extra } });
    expect(r.errors).toBeUndefined();
    await enter(id, 0, users);
  }

  /** users `from` … `to` − 1 enter */
  async function enter(id: string, from: number, to: number) {
    await pool(
      Array.from({ length: to - from }, (_, i) => from + i),
      8,
      async (i) => expect((await gql(app.port, await token(`${id}-u${i}`), ENTER, { c: id })).errors).toBeUndefined(),
    );
  }

  /** picks a campaign in the list, once the read side has it there */
  async function select(id: string) {
    const row = page.locator(`#campaigns tbody tr[data-id=${id}]`);
    await waitUntil(
      async () => (await page.click('#refresh'), row.count()),
      (n) => n === 1,
      { what: `${id} in the campaigns list` },
    );
    await row.click();
    await waitUntil(
      () => page.locator('#drop-id').textContent(),
      (t) => t === id,
      { what: `${id} selected` },
    );
  }

  /** pastes a receipt file into the box and reads the verdict and the failed checks */
  async function check(file: unknown) {
    await page.fill('#receipt', JSON.stringify(file));
    await page.click('#receipt-check');
    await page.waitForSelector('#receipt-verdict:is([data-verdict=PASS], [data-verdict=FAIL], [data-verdict=ERROR])', { timeout: 30_000 });
    return {
      verdict: await page.locator('#receipt-verdict').textContent(),
      failed: await page
        .locator('#receipt-checks li[data-ok=false]')
        .evaluateAll((lis) => lis.map((li) => (li as unknown as { dataset: { check: string } }).dataset.check)),
      passed: await page.locator('#receipt-checks li[data-ok=true]').count(),
    };
  }

  it('checks a real receipt in the browser: PASS, and FAIL naming the check for a tampered copy', async () => {
    const C = 'panels-fair';
    // a receipt given while the line is still growing, kept by its owner
    await drop(C, 6, 4);
    const kept = await waitUntil(
      async () => await gql(app.port, await token(`${C}-u2`), MY, { c: C }),
      (r) => r.data?.myEntry?.receipt != null,
      { what: "u2's receipt" },
    );
    const entry = kept.data!.myEntry;
    // then more entrants, the sell-out and the close: the receipt's head is an early prefix of the final one
    await enter(C, 4, 10);
    expect((await gql(app.port, admin, `mutation($c: ID!) { closeCampaign(id: $c) { status } }`, { c: C })).errors).toBeUndefined();
    const final = await waitUntil(
      async () => (await (await fetch(`http://127.0.0.1:${app.port}/fairness/${C}`)).json()) as { finalHead: { size: number } | null },
      (f) => f.finalHead !== null,
      { what: 'the final head published' },
    );
    expect(entry.receipt.head.size).toBeLessThan(final.finalHead!.size);

    // no token: the box works signed out
    expect(await page.locator('#sign-in').isVisible()).toBe(true);
    const good = await check(kept);
    expect(good.verdict).toBe(`PASS: the receipt holds (${C}, position ${entry.position})`);
    expect(good.failed).toEqual([]);
    expect(good.passed).toBeGreaterThanOrEqual(9);
    expect(await page.locator('#receipt-checks li[data-check=consistency]').textContent()).toContain(
      `the receipt's head (size ${entry.receipt.head.size}) is a prefix of the final head (size ${final.finalHead!.size})`,
    );

    const other = entry.position === 1 ? 2 : 1;
    expect((await check({ ...entry, position: other })).failed).toEqual(['leaf']);
    const leaf = entry.receipt.leaf.replace(/.$/, (c: string) => (c === '0' ? '1' : '0'));
    expect((await check({ ...entry, receipt: { ...entry.receipt, leaf } })).failed).toEqual(['leaf', 'inclusion', 'position']);
    const sig = Buffer.from(entry.receipt.head.signature, 'base64');
    sig[10] = sig[10]! ^ 0x01;
    const forged = { ...entry, receipt: { ...entry.receipt, head: { ...entry.receipt.head, signature: sig.toString('base64') } } };
    const bad = await check(forged);
    expect(bad.failed).toEqual(['headSignature']);
    expect(bad.verdict).toBe('FAIL: headSignature');
    expect((await check({ nothing: 'here' })).verdict).toMatch(/^no entry here/);
    expect(errors).toEqual([]);
  });

  it('shows an INVENTORY drop’s codes loaded, issued and short, and never a code', async () => {
    await page.fill('#token', admin);
    await page.click('#sign-in-button');
    await page.waitForSelector('#app', { state: 'visible' });
    const C = 'panels-codes';
    const codes = Array.from({ length: 9 }, (_, i) => `PANEL-PIN-${i}-ZQ`);
    await drop(C, 6, 8, { issuance: 'INVENTORY' });
    expect((await gql(app.port, admin, LOAD, { c: C, codes: codes.slice(0, 4) })).errors).toBeUndefined();
    await select(C);

    const shown = async () => (await page.locator('#codes b').allTextContents()).map(Number);
    const upTo = async (loaded: number, issued: number, what: string) => {
      await waitUntil(
        () => auditFromLog(iso.config, C),
        (a) => a.codes.size === issued,
        { what: `${what}: ${issued} codes issued in the log` },
      );
      return waitUntil(shown, (s) => s[0] === loaded && s[1] === issued, { what: `${what}: the panel at ${loaded} loaded` });
    };
    // six winners, four codes: two wait short
    expect(await upTo(4, 4, 'a shortage')).toEqual([4, 4, 2]);
    expect(await page.locator('#codes').isVisible()).toBe(true);
    expect((await gql(app.port, admin, LOAD, { c: C, codes: codes.slice(4) })).errors).toBeUndefined();
    expect(await upTo(9, 6, 'codes loaded later')).toEqual([9, 6, 0]);
    const body = (await page.locator('body').textContent())!;
    for (const code of codes) expect(body).not.toContain(code);

    // a MINTED drop has no such panel
    await drop('panels-minted', 1, 1);
    await select('panels-minted');
    await waitUntil(() => page.locator('#codes').isHidden(), Boolean, { what: 'no codes panel for a MINTED drop' });
    expect(errors).toEqual([]);
  });

  it('shows the provider’s circuit breaker while the provider is down, and clears it once it is back', async () => {
    expect(await page.locator('#health').isHidden()).toBe(true);
    await drop('panels-provider', 3, 3, { issuance: 'PROVIDER', product: 'chicken-10000' });
    const part = page.locator('#degraded li[data-part=issuer]');
    await part.waitFor({ timeout: 60_000 });
    expect(await page.locator('#health').isVisible()).toBe(true);
    expect(await part.textContent()).toMatch(/^issuer: the provider is failing: its circuit breaker is (open|half-open)/);
    expect(sim.stats().issued).toBe(0);

    sim.setFaults({ down: false });
    await page.locator('#health').waitFor({ state: 'hidden', timeout: 60_000 });
    await waitUntil(
      async () => sim.stats().issued,
      (n) => n === 3,
      { what: 'the three winners issued once the provider is back' },
    );
    expect(errors).toEqual([]);
  });
});
