import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchFromCatalog } from '../support/browser.js';
import type { TestSortie } from '../support/harness.js';
import { ENTER, FRENCH, GERMAN, POLISH_AND_CZECH, replay, type TypedLine } from '../support/keyboard-layouts.js';
import { waitFor } from '../support/wait.js';
import { DEMO_IMAGE, SMALL_LIMITS, startClusterDesk, type ClusterBrowserDesk } from './cluster.js';

// Typing on a German or a French keyboard in the real browser (Debian's Chromium) reaches
// the app as typed, on a pod of the local cluster (Xvnc in the VNC sidecar). The browser's
// key events are replayed as Chromium on Linux delivers them for each layout
// (support/keyboard-layouts.ts); the app is a terminal in the demo-apps image whose shell
// copies each typed line into a file in the session's home, read back through the file API.

const TYPED = 'typed.txt';
// The image sets no locale; the terminal needs a UTF-8 one to write what it gets as UTF-8.
const TYPIST = `cd "$HOME" && LANG=C.UTF-8 exec xterm -geometry 100x30+0+0 -e sh -c 'exec cat > ${TYPED}'`;
const apps = [
  { id: 'typist', name: 'Typist', category: 'Test', launch_type: 'container', container_image: DEMO_IMAGE, command: ['sh', '-c', TYPIST], resource_limits: SMALL_LIMITS },
];

let cluster: ClusterBrowserDesk;
let sortie: TestSortie;
let browser: Browser;

before(async () => {
  cluster = await startClusterDesk({ name: 'desk-keyboard', apps, env: { SORTIE_MAX_SESSIONS_PER_USER: '10' }, browser: true });
  ({ sortie, browser } = cluster);
});

after(() => cluster?.cleanup());

/** Opens the terminal on a pod, points at it (X gives keys to the window under the pointer), types `line` and Enter, and reads the file the app wrote. */
async function typeInTerminal(line: TypedLine): Promise<string> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  const { sessionId } = await launchFromCatalog(page, sortie.url, 'typist', `desktop-keyboard-kubernetes-${line.layout}.png`);
  await page.getByTestId('vnc-container').locator('canvas').click({ position: { x: 60, y: 40 } });
  await replay(await context.newCDPSession(page), [...line.steps, ...ENTER]);
  const typed = await waitFor(
    async () => {
      const reply = await sortie.api.request('GET', `/api/sessions/${sessionId}/files/content?path=${TYPED}`);
      return reply.status === 200 && reply.text.endsWith('\n') && reply.text;
    },
    { what: `the line typed on the ${line.layout} layout to reach the app on the pod`, timeoutMs: 20_000, intervalMs: 250 },
  );
  await context.close();
  assert.equal((await sortie.api.end(sessionId)).status, 200);
  return typed;
}

describe('typing on a non-US keyboard layout on the kubernetes runner', { timeout: 600_000 }, () => {
  test('German: ß, ü, Ä, the AltGr characters (@ € { [ ] } \\ | ~) and the dead keys ´ and ^ land as typed', async () => {
    assert.equal(await typeInTerminal(GERMAN), `${GERMAN.expected}\n`);
  });

  test('French: dead keys compose (^e ê, ¨u ü, `a à), a dead key then space or twice gives the accent, and é è ç à ù @ land as typed', async () => {
    assert.equal(await typeInTerminal(FRENCH), `${FRENCH.expected}\n`);
  });

  test('Polish and Czech: 29 letters the desktop\'s US keymap lacks all land, more than it has free keys for at first', async () => {
    assert.equal(await typeInTerminal(POLISH_AND_CZECH), `${POLISH_AND_CZECH.expected}\n`);
  });
});
