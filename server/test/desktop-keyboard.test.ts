import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { homeDirPath } from '../src/runners/local/state-file.js';
import { launchBrowser, launchFromCatalog } from './support/browser.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { ENTER, FRENCH, GERMAN, replay, type TypedLine } from './support/keyboard-layouts.js';
import { waitFor } from './support/wait.js';

// Typing on a German or a French keyboard in the real browser (Debian's Chromium) reaches
// the app as typed, on the local runner. The browser's key events are replayed as Chromium
// on Linux delivers them for each layout (support/keyboard-layouts.ts); the app is a
// terminal whose shell copies each typed line into a file in the session's home.

const TYPED = 'typed.txt';
const apps = [
  {
    id: 'typist',
    name: 'Typist',
    category: 'Test',
    launch_type: 'container',
    command: ['xterm', '-geometry', '100x30+0+0', '-e', 'sh', '-c', `exec cat > "$HOME/${TYPED}"`],
  },
];

let sortie: TestSortie;
let browser: Browser;
let closeBrowser: () => Promise<void>;

before(async () => {
  sortie = await startTestSortie({ name: 'desktop-keyboard', apps, env: { SORTIE_MAX_SESSIONS_PER_USER: '10' } });
  ({ browser, close: closeBrowser } = await launchBrowser());
});

after(async () => {
  await closeBrowser?.();
  await sortie?.cleanup();
});

/** Opens the terminal in a fresh browser profile, points at it (X gives keys to the window under the pointer) and types `line` and Enter. */
async function typeInTerminal(line: TypedLine): Promise<{ page: Page; id: string; typed: string }> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  const { sessionId } = await launchFromCatalog(page, sortie.url, 'typist', `desktop-keyboard-${line.layout}.png`);
  const canvas = page.getByTestId('vnc-container').locator('canvas');
  await canvas.click({ position: { x: 60, y: 40 } });
  const cdp = await context.newCDPSession(page);
  await replay(cdp, [...line.steps, ...ENTER]);
  const file = path.join(homeDirPath(sortie.stateDir, sessionId), TYPED);
  const typed = await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').endsWith('\n') && readFileSync(file, 'utf8'), {
    what: `the line typed on the ${line.layout} layout to reach the app`,
    timeoutMs: 15_000,
  });
  await context.close();
  assert.equal((await sortie.api.end(sessionId)).status, 200);
  return { page, id: sessionId, typed };
}

describe('typing on a non-US keyboard layout on the local runner', { timeout: 180_000 }, () => {
  test('German: ß, ü, Ä, the AltGr characters (@ € { [ ] } \\ | ~) and the dead keys ´ and ^ land as typed', async () => {
    const { typed } = await typeInTerminal(GERMAN);
    assert.equal(typed, `${GERMAN.expected}\n`);
  });

  test('French: dead keys compose (^e ê, ¨u ü, `a à), a dead key then space or twice gives the accent, and é è ç à ù @ land as typed', async () => {
    const { typed } = await typeInTerminal(FRENCH);
    assert.equal(typed, `${FRENCH.expected}\n`);
  });
});
