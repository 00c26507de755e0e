import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { homeDirPath, xauthFilePath } from '../../src/runners/local/state-file.js';
import { launchBrowser, launchFromCatalog } from '../support/browser.js';
import { startTestSortie, type TestSortie } from '../support/harness.js';
import { localSessionRecord } from '../support/processes.js';
import { sleep, waitFor } from '../support/wait.js';

// Two people in two browsers: A shares a running session by link, B signs in, opens the link
// and watches. What A types shows on B's canvas; what B types or clicks never reaches the
// desktop; revoking B's share ends B's stream.

const execFileAsync = promisify(execFile);
const ADMIN_PASSWORD = 'sharing-browser-admin-1';
const PASSWORD = 'sharing-browser-user-1';
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
const POINTER = [
  'import ctypes',
  "x = ctypes.CDLL('libX11.so.6')",
  'x.XOpenDisplay.restype = ctypes.c_void_p',
  'x.XDefaultRootWindow.restype = ctypes.c_ulong',
  'd = ctypes.c_void_p(x.XOpenDisplay(None))',
  'root = ctypes.c_ulong(x.XDefaultRootWindow(d))',
  'w = ctypes.c_ulong(); c = ctypes.c_ulong(); rx = ctypes.c_int(); ry = ctypes.c_int(); wx = ctypes.c_int(); wy = ctypes.c_int(); m = ctypes.c_uint()',
  'x.XQueryPointer(d, root, ctypes.byref(w), ctypes.byref(c), ctypes.byref(rx), ctypes.byref(ry), ctypes.byref(wx), ctypes.byref(wy), ctypes.byref(m))',
  'print(rx.value, ry.value)',
].join('\n');

let sortie: TestSortie;
let browser: Browser;
let closeBrowser: () => Promise<void>;

before(async () => {
  sortie = await startTestSortie({ name: 'sharing-browser', apps, env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD } });
  const admin = await sortie.signIn('admin', ADMIN_PASSWORD);
  await admin.createUser('alice', PASSWORD);
  await admin.createUser('bob', PASSWORD);
  ({ browser, close: closeBrowser } = await launchBrowser());
});

after(async () => {
  await closeBrowser?.();
  await sortie?.cleanup();
});

async function signIn(page: Page, username: string): Promise<void> {
  await page.getByTestId('signin-username').fill(username);
  await page.getByTestId('signin-password').fill(PASSWORD);
  await page.getByTestId('signin-submit').click();
}

/** The canvas's pixels in the strip where the terminal's first line is, as RGB bytes. */
async function firstLine(page: Page): Promise<number[]> {
  const canvas = page.getByTestId('vnc-container').locator('canvas');
  return canvas.evaluate((el) => {
    const c = el as unknown as { getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
    const data = c.getContext('2d').getImageData(0, 0, 400, 20).data;
    const out: number[] = [];
    for (let i = 0; i < data.length; i += 4) out.push(data[i]!, data[i + 1]!, data[i + 2]!);
    return out;
  });
}

/** Share of the channel values of `a` and `b` that differ by more than a little (lossy encodings). */
function difference(a: number[], b: number[]): number {
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > 48) differ++;
  return differ / a.length;
}

describe('watching a shared session in the browser', { timeout: 300_000 }, () => {
  test('B watches by link what A types, B cannot type or click, and revoking ends B\'s stream', async () => {
    const contextA = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const contextB = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const a = await contextA.newPage();
    const b = await contextB.newPage();
    try {
      await a.goto(sortie.url);
      await signIn(a, 'alice');
      const { sessionId } = await launchFromCatalog(a, sortie.url, 'typist', 'sharing-owner.png');
      const file = path.join(homeDirPath(sortie.stateDir, sessionId), TYPED);
      const typed = () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
      const canvasA = a.getByTestId('vnc-container').locator('canvas');
      await canvasA.click({ position: { x: 60, y: 40 } });

      // A makes a view-only link and hands it to B.
      await a.getByTestId('share-toggle').click();
      await a.getByTestId('share-link-mode').selectOption('view');
      await a.getByTestId('share-link-minutes').fill('30');
      await a.getByTestId('share-link-add').click();
      const link = await a.getByTestId('share-link-url').inputValue();
      assert.match(link, /\/#\/share\/[A-Za-z0-9_-]{43}$/);

      // B is asked to sign in first, then lands on the shared desktop.
      await b.goto(link);
      await signIn(b, 'bob');
      await b.waitForURL(new RegExp(`#/sessions/${sessionId}`), { timeout: 15_000 });
      await b.getByTestId('watching-notice').filter({ hasText: "Watching alice's session (view only)" }).waitFor({ timeout: 30_000 });
      const canvasB = b.getByTestId('vnc-container').locator('canvas');
      await canvasB.waitFor({ state: 'visible', timeout: 30_000 });
      assert.equal(await b.getByTestId('end-session').count(), 0, 'B cannot end the session');
      // Told by the live feed; the viewer's slow poll is the safety net.
      await a.getByTestId('watched-notice').filter({ hasText: 'Being watched by bob' }).waitFor({ timeout: 30_000 });
      await a.getByTestId('share-bob').filter({ hasText: 'watching now' }).waitFor({ timeout: 30_000 });

      // What A types shows on B's canvas.
      const before = await firstLine(b);
      await canvasA.click({ position: { x: 60, y: 40 } });
      await a.keyboard.type('hello from alice');
      await a.keyboard.press('Enter');
      await waitFor(() => typed() === 'hello from alice\n', { what: "A's line in the app", timeoutMs: 15_000 });
      await waitFor(async () => difference(before, await firstLine(b)) > 0.01, { what: "A's typing on B's canvas", timeoutMs: 15_000 });
      const seenByA = await firstLine(a);
      await waitFor(async () => difference(seenByA, await firstLine(b)) < 0.02, { what: "B's canvas to show what A's does", timeoutMs: 15_000 });

      // B types, clicks and pastes: none of it reaches the desktop.
      await canvasB.click({ position: { x: 300, y: 200 } });
      await b.keyboard.type('typed by bob');
      await b.keyboard.press('Enter');
      await contextB.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: sortie.url });
      await b.keyboard.press('Control+V');
      await sleep(1000);
      const { display } = localSessionRecord(sortie.stateDir, sessionId);
      const env = { PATH: process.env.PATH, DISPLAY: `:${display}`, XAUTHORITY: xauthFilePath(sortie.stateDir, sessionId) };
      assert.equal((await execFileAsync('python3', ['-c', POINTER], { env, timeout: 10_000 })).stdout.trim(), '60 40', 'the pointer is where A left it');
      await canvasA.click({ position: { x: 60, y: 40 } });
      await a.keyboard.type('second');
      await a.keyboard.press('Enter');
      await waitFor(() => typed().endsWith('second\n'), { what: "A's second line", timeoutMs: 15_000 });
      assert.equal(typed(), 'hello from alice\nsecond\n', "only A's keys reached the app");

      // A revokes B's share: B's stream ends and B is told why.
      await a.getByTestId('share-revoke-bob').click();
      await b.getByText(/revoked|not found/i).first().waitFor({ timeout: 5_000 });
      await a.getByTestId('share-bob').waitFor({ state: 'detached', timeout: 5_000 });
      await b.screenshot({ path: path.join('test-results', 'sharing-revoked.png') });
    } finally {
      await contextA.close();
      await contextB.close();
    }
  });
});
