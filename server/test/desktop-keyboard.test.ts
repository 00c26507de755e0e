import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, launchFromCatalog } from './support/browser.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { ENTER, FRENCH, GERMAN, POLISH_AND_CZECH, replay, type TypedLine } from './support/keyboard-layouts.js';
import { heldKeysOf, typedText, TYPIST_APP } from './support/typist.js';
import { waitFor } from './support/wait.js';

// Typing on a German or a French keyboard in the real browser (Debian's Chromium) reaches
// the app as typed, on the local runner. The browser's key events are replayed as Chromium
// on Linux delivers them for each layout (support/keyboard-layouts.ts); the app is a
// terminal whose shell copies each typed line into a file in the session's home.

const apps = [TYPIST_APP];

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

/**
 * Opens the terminal in a fresh browser profile, points at it (X gives keys to the window
 * under the pointer), types `line` and Enter; answers with what the app wrote and the keys
 * the X server still holds down once the typing is over, with the viewer still connected.
 */
async function typeInTerminal(line: TypedLine): Promise<{ typed: string; held: string }> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  const { sessionId } = await launchFromCatalog(page, sortie.url, 'typist', `desktop-keyboard-${line.layout}.png`);
  const canvas = page.getByTestId('vnc-container').locator('canvas');
  await canvas.click({ position: { x: 60, y: 40 } });
  const cdp = await context.newCDPSession(page);
  await replay(cdp, [...line.steps, ...ENTER]);
  const typed = await waitFor(
    () => {
      const text = typedText(sortie.stateDir, sessionId);
      return text.endsWith('\n') && text;
    },
    { what: `the line typed on the ${line.layout} layout to reach the app`, timeoutMs: 15_000 },
  );
  const held = await heldKeysOf(sortie.stateDir, sessionId);
  await context.close();
  assert.equal((await sortie.api.end(sessionId)).status, 200);
  return { typed, held };
}

describe('typing on a non-US keyboard layout on the local runner', { timeout: 180_000 }, () => {
  test('German: ß, ü, Ä, the AltGr characters (@ € { [ ] } \\ | ~) and the dead keys ´ and ^ land as typed', async () => {
    const { typed, held } = await typeInTerminal(GERMAN);
    assert.equal(typed, `${GERMAN.expected}\n`);
    assert.equal(held, '', 'no key is left down on the desktop');
  });

  test('French: dead keys compose (^e ê, ¨u ü, `a à), a dead key then space or twice gives the accent, and é è ç à ù @ land as typed', async () => {
    const { typed, held } = await typeInTerminal(FRENCH);
    assert.equal(typed, `${FRENCH.expected}\n`);
    // The browser never sent the keyups of the Shift and AltGr pressed with dead keys.
    assert.equal(held, '', 'no key is left down on the desktop');
  });

  test('Polish and Czech: 29 letters the desktop\'s US keymap lacks all land, more than it has free keys for at first', async () => {
    const { typed, held } = await typeInTerminal(POLISH_AND_CZECH);
    assert.equal(typed, `${POLISH_AND_CZECH.expected}\n`);
    assert.equal(held, '', 'no key is left down on the desktop');
  });
});
