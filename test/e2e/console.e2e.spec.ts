import { existsSync, mkdirSync, copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFromLog } from '../support/audit.js';
import { gql, isolated, pool, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';

/**
 * The drop console in a real headless Chromium (Debian's package, driven by playwright-core):
 * sign in, create a drop, let a crowd in, and watch the pushed counters and the chart reach the
 * numbers the log holds; then the winners and gifticons pages and a report and a replay job.
 */
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const OUTPUT = fileURLToPath(new URL('../output/', import.meta.url));
const DOCS = fileURLToPath(new URL('../../docs/console.png', import.meta.url));
const STOCK = 200;
const USERS = 1500;

if (!CHROMIUM)
  console.log(
    'console.e2e skipped: no Chromium at CHROMIUM_PATH, /usr/bin/chromium or /usr/bin/chromium-browser (apt-get install -y chromium)',
  );

describe.skipIf(!CHROMIUM)('the drop console', () => {
  let iso: Isolated;
  let app: AppProcess;
  let browser: Browser;
  let page: Page;
  beforeAll(async () => {
    iso = await isolated('console');
    app = await spawnApp(iso, 'api,writer,projector,worker');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.kill();
    await iso?.cleanup();
  });

  const textOf = (sel: string) => page.locator(sel).textContent();
  // conditions run in the page as functions (the page's CSP refuses string evaluation); this
  // project compiles without the DOM types, so the page's globals are reached untyped
  type Doc = { querySelector(s: string): { textContent: string | null; getAttribute(a: string): string | null } | null };
  const waitText = (sel: string, value: string, timeout = 60_000) =>
    page.waitForFunction(
      ([s, v]) => (globalThis as unknown as { document: Doc }).document.querySelector(s!)?.textContent === v,
      [sel, value],
      { timeout },
    );
  const waitAttr = (sel: string, attr: string, value: string, timeout = 60_000) =>
    page.waitForFunction(
      ([s, a, v]) => (globalThis as unknown as { document: Doc }).document.querySelector(s!)?.getAttribute(a!) === v,
      [sel, attr, value],
      { timeout },
    );
  const waitChange = (sel: string, from: string | null, timeout = 60_000) =>
    page.waitForFunction(
      ([s, f]) => (globalThis as unknown as { document: Doc }).document.querySelector(s!)?.textContent !== f,
      [sel, from],
      { timeout },
    );
  const waitIncludes = (sel: string, part: string, timeout = 60_000) =>
    page.waitForFunction(
      ([s, p]) => ((globalThis as unknown as { document: Doc }).document.querySelector(s!)?.textContent ?? '').includes(p!),
      [sel, part],
      { timeout },
    );

  it('signs in, creates a drop and shows its counters and chart reach the final numbers as a crowd enters', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await page.goto(`http://127.0.0.1:${app.port}/console`);
    await page.fill('#token', await token('console-admin', ['admin', 'codes:read']));
    await page.click('#sign-in-button');
    await page.waitForSelector('#app', { state: 'visible' });
    expect(await textOf('#who')).toBe('signed in as console-admin');

    await page.fill('#create input[name=id]', 'console-drop');
    await page.fill('#create input[name=title]', 'Friday drop');
    await page.fill('#create input[name=stock]', String(STOCK));
    await page.click('#create button');
    await waitText('#drop-id', 'console-drop');
    await waitText('#drop-status', 'OPEN');

    const tokens = await Promise.all(Array.from({ length: USERS }, (_, i) => token(`fan-${i}`)));
    await pool(tokens, 32, (t) => gql(app.port, t, `mutation { enter(campaignId: "console-drop") { rejection } }`));
    const audit = await auditFromLog(iso.config, 'console-drop');

    await waitText('#c-winners', String(STOCK));
    await waitText('#c-remaining', '0');
    await waitText('#drop-status', 'SOLD_OUT');
    expect(await textOf('#c-entrants')).toBe(String(audit.entrants));
    expect(await page.locator('#campaigns tbody tr[data-id=console-drop] td').allTextContents()).toEqual([
      'console-drop',
      'Friday drop',
      'SOLD_OUT',
      String(STOCK),
      String(audit.entrants),
      String(STOCK),
      '0',
    ]);
    const chart = page.locator('#chart');
    await waitAttr('#chart', 'data-entrants', String(audit.entrants), 30_000);
    expect(await chart.getAttribute('data-remaining')).toBe('0');
    expect(await chart.getAttribute('data-sold-out')).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThan(1);

    // the pages follow the read side: every winner and code, 20 to a page
    await waitAttr('#gifticons', 'data-total', String(STOCK));
    await waitAttr('#winners', 'data-total', String(STOCK));
    expect(await page.locator('#winners tbody tr').count()).toBe(20);
    expect(await page.locator('#winners tbody tr').first().locator('td').first().textContent()).toBe('1');
    const firstPage = await page.locator('#gifticons tbody tr td:nth-child(2)').first().textContent();
    await page.click('#gifticons-next');
    await waitChange('#gifticons tbody tr td:nth-child(2)', firstPage);
    const codes = await page.locator('#gifticons tbody tr td:nth-child(2)').allTextContents();
    const issued = new Set(audit.codes.values());
    expect(codes.length).toBe(20);
    for (const c of codes) expect(issued.has(c), c).toBe(true);

    // a report and a replay, each with its progress to the end
    await page.click('#report');
    await page.waitForSelector('#jobs tr[data-status=SUCCEEDED]', { timeout: 60_000 });
    await waitIncludes('#report-out', `"winners": ${STOCK}`, 30_000);
    await page.selectOption('#replay-target', 'REDIS');
    await page.click('#replay');
    await page.locator('#jobs tr[data-status=SUCCEEDED]').nth(1).waitFor({ timeout: 90_000 });
    expect(await page.locator('#jobs progress').evaluateAll((bars) => bars.map((b) => (b as unknown as { value: number }).value))).toEqual([
      1, 1,
    ]);

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: `${OUTPUT}console.png`, fullPage: true });
    if (process.env.UPDATE_DOCS_SCREENSHOT) copyFileSync(`${OUTPUT}console.png`, DOCS);
    expect(errors).toEqual([]);
  });
});
