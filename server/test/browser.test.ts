import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, launchFromCatalog, SCREENSHOT_DIR } from './support/browser.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { processesInGroups, localSessionRecord } from './support/processes.js';

// A person in a real browser, against the real server and the local runner.
let sortie: TestSortie;
let browser: Browser;
let closeBrowser: () => Promise<void>;

before(async () => {
  sortie = await startTestSortie({ name: 'browser' });
  ({ browser, close: closeBrowser } = await launchBrowser());
});

after(async () => {
  await closeBrowser?.();
  await sortie?.cleanup();
});

test('open the catalog, launch xterm, and see its desktop in the noVNC canvas', async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // The UI and noVNC work under Sortie's Content-Security-Policy: nothing is blocked.
  const blocked: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) blocked.push(message.text());
  });
  const { sessionId, colours } = await launchFromCatalog(page, sortie.url, 'xterm', 'browser-local-xterm.png');
  assert.deepEqual(blocked, [], 'no CSP violations while the catalog and the desktop load');
  assert.ok(colours >= 2, `the canvas shows the desktop (${colours} colours), screenshot in ${path.join(SCREENSHOT_DIR, 'browser-local-xterm.png')}`);

  // Ending the session from the viewer ends it for real.
  const groups = localSessionRecord(sortie.stateDir, sessionId).processes.map((p) => p.pid);
  await page.getByTestId('end-session').click();
  await page.getByTestId('viewer-status').filter({ hasText: 'terminated' }).waitFor({ timeout: 10_000 });
  assert.equal((await sortie.api.session(sessionId)).status, 'terminated');
  assert.deepEqual(processesInGroups(groups), []);
  await page.close();
});

test('search and categories narrow the catalog', async () => {
  const page = await browser.newPage();
  await page.goto(sortie.url);
  await page.getByTestId('app-card-xterm').waitFor();
  await page.getByTestId('search-input').fill('eyes');
  await page.getByTestId('app-card-xeyes').waitFor();
  assert.equal(await page.getByTestId('app-card-xterm').count(), 0);
  await page.getByTestId('search-input').fill('');
  await page.getByTestId('category-Development').click();
  await page.getByTestId('app-card-xterm').waitFor();
  assert.equal(await page.getByTestId('app-card-xeyes').count(), 0);
  await page.close();
});
