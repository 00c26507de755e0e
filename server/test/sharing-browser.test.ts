import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page, WebSocket } from 'playwright-core';
import { launchBrowser, launchFromCatalog, SCREENSHOT_DIR, signIn } from './support/browser.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { pointerOf, typedText, TYPIST_APP } from './support/typist.js';
import { waitFor } from './support/wait.js';

// Two people in two browsers: A shares a running session by link, B signs in, opens the link
// and watches. What A types shows on B's canvas; what B types, clicks or pastes never reaches
// the desktop; A sees who watches; revoking B's share ends B's stream at once; a control share
// lets B type. (The relay's filtering of a hand-written RFB client is session-sharing.test.ts.)

const ADMIN_PASSWORD = 'sharing-browser-admin-1';
const PASSWORD = 'sharing-browser-user-1';
const VIEWPORT = { width: 1100, height: 760 };
/** The RFB message type of SetDesktopSize. */
const SET_DESKTOP_SIZE = 251;

let sortie: TestSortie;
let browser: Browser;
let closeBrowser: () => Promise<void>;

before(async () => {
  sortie = await startTestSortie({ name: 'sharing-browser', apps: [TYPIST_APP], env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD } });
  const admin = await sortie.signIn('admin', ADMIN_PASSWORD);
  await admin.createUser('alice', PASSWORD);
  await admin.createUser('bob', PASSWORD);
  ({ browser, close: closeBrowser } = await launchBrowser());
});

after(async () => {
  await closeBrowser?.();
  await sortie?.cleanup();
});

interface Stream {
  socket: WebSocket;
  closedAt?: number;
  /** SetDesktopSize messages the viewer sent. */
  resizes: number;
}

/** The page's desktop streams, in the order its viewer opened them. */
function streamsOf(page: Page): Stream[] {
  const streams: Stream[] = [];
  page.on('websocket', (socket) => {
    if (!socket.url().includes('/ws/sessions/')) return;
    const stream: Stream = { socket, resizes: 0 };
    socket.on('close', () => (stream.closedAt = Date.now()));
    socket.on('framesent', ({ payload }) => {
      if (typeof payload !== 'string' && payload[0] === SET_DESKTOP_SIZE) stream.resizes++;
    });
    streams.push(stream);
  });
  return streams;
}

function canvasOf(page: Page) {
  return page.getByTestId('vnc-container').locator('canvas');
}

/** The canvas's pixels in the strip where the terminal's first line is, as RGB bytes. */
async function firstLine(page: Page): Promise<number[]> {
  return canvasOf(page).evaluate((el) => {
    const c = el as unknown as { getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
    const data = c.getContext('2d').getImageData(0, 0, 400, 20).data;
    const out: number[] = [];
    for (let i = 0; i < data.length; i += 4) out.push(data[i]!, data[i + 1]!, data[i + 2]!);
    return out;
  });
}

/** The desktop's size as the page's viewer draws it. */
async function desktopSize(page: Page): Promise<string> {
  return canvasOf(page).evaluate((el) => {
    const c = el as unknown as { width: number; height: number };
    return `${c.width}x${c.height}`;
  });
}

/** Share of the channel values of `a` and `b` that differ by more than a little (lossy encodings). */
function difference(a: number[], b: number[]): number {
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > 48) differ++;
  return differ / a.length;
}

describe('watching a shared session in the browser', { timeout: 300_000 }, () => {
  let contextA: BrowserContext;
  let contextB: BrowserContext;
  let a: Page;
  let b: Page;
  let sessionId: string;
  let streamsA: Stream[];
  let streamsB: Stream[];
  const typed = () => typedText(sortie.stateDir, sessionId);

  before(async () => {
    contextA = await browser.newContext({ viewport: VIEWPORT });
    contextB = await browser.newContext({ viewport: VIEWPORT });
    a = await contextA.newPage();
    b = await contextB.newPage();
    streamsA = streamsOf(a);
    streamsB = streamsOf(b);
  });

  after(async () => {
    await contextA?.close();
    await contextB?.close();
  });

  test('B watches by link what A types, A sees it, and nothing B types, clicks or pastes reaches the desktop', async () => {
    await a.goto(sortie.url);
    await signIn(a, 'alice', PASSWORD);
    ({ sessionId } = await launchFromCatalog(a, sortie.url, 'typist', 'sharing-owner.png'));
    const sizeBefore = await desktopSize(a);

    // A makes a view-only link and hands it to B.
    await a.getByTestId('share-toggle').click();
    await a.getByTestId('share-link-mode').selectOption('view');
    await a.getByTestId('share-link-minutes').fill('30');
    await a.getByTestId('share-link-add').click();
    const link = await a.getByTestId('share-link-url').inputValue();
    assert.match(link, /\/#\/share\/[A-Za-z0-9_-]{43}$/);

    // B is asked to sign in first, then lands on the shared desktop.
    await b.goto(link);
    await signIn(b, 'bob', PASSWORD);
    await b.waitForURL(new RegExp(`#/sessions/${sessionId}`), { timeout: 15_000 });
    await b.getByTestId('watching-notice').filter({ hasText: "Watching alice's session (view only)" }).waitFor({ timeout: 30_000 });
    await canvasOf(b).waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await b.getByTestId('end-session').count(), 0, 'B cannot end the session');

    // A is told by the live feed who watches, on the desktop and in the share panel.
    await a.getByTestId('watched-notice').filter({ hasText: 'Being watched by bob' }).waitFor({ timeout: 15_000 });
    await a.getByTestId('share-bob').filter({ hasText: 'watching now' }).waitFor({ timeout: 15_000 });

    // What A types shows on B's canvas.
    const before = await firstLine(b);
    const canvasA = canvasOf(a);
    await canvasA.click({ position: { x: 60, y: 40 } });
    await a.keyboard.type('hello from alice');
    await a.keyboard.press('Enter');
    await waitFor(() => typed() === 'hello from alice\n', { what: "A's line in the app", timeoutMs: 15_000 });
    await waitFor(async () => difference(before, await firstLine(b)) > 0.01, { what: "A's typing on B's canvas", timeoutMs: 15_000 });
    const seenByA = await firstLine(a);
    await waitFor(async () => difference(seenByA, await firstLine(b)) < 0.02, { what: "B's canvas to show what A's does", timeoutMs: 15_000 });

    // B types, clicks and pastes. A then types a line with the keyboard alone (the pointer stays
    // where A clicked): once it is in the app, B's input, sent earlier, would have landed too.
    const pointerOfA = await pointerOf(sortie.stateDir, sessionId);
    const canvasB = canvasOf(b);
    await canvasB.click({ position: { x: 300, y: 200 } });
    await b.keyboard.type('typed by bob');
    await b.keyboard.press('Enter');
    await contextB.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: sortie.url });
    await b.keyboard.press('Control+V');
    await a.keyboard.type('second');
    await a.keyboard.press('Enter');
    await waitFor(() => typed().endsWith('second\n'), { what: "A's second line", timeoutMs: 15_000 });
    assert.equal(typed(), 'hello from alice\nsecond\n', "only A's keys reached the app");
    assert.deepEqual(await pointerOf(sortie.stateDir, sessionId), { ...pointerOfA, mask: 0 }, 'the pointer is where A left it, no button held');

    // Someone starting to watch neither resized A's desktop nor had to reconnect.
    assert.equal(await desktopSize(a), sizeBefore, "A's desktop keeps its size while B joins");
    assert.equal(streamsB.length, 1, "B's stream stayed up from the start");
    assert.equal(streamsB[0]!.closedAt, undefined);
    assert.equal(streamsA.length, 1, "A's stream stayed up from the start");
    // Fitting the desktop to A's window takes a request or two, not one every 100 ms.
    assert.ok(streamsA[0]!.resizes <= 3, `A's viewer asked for a desktop size ${streamsA[0]!.resizes} times`);
  });

  test("revoking B's share closes B's stream within a second and tells B why", async () => {
    const stream = streamsB.at(-1)!;
    const asked = new Promise<number>((resolve) => {
      a.on('request', (request) => {
        if (request.method() === 'DELETE' && request.url().includes('/shares/')) resolve(Date.now());
      });
    });
    await a.getByTestId('share-revoke-bob').click();
    const at = await asked;
    const closedAt = await waitFor(() => stream.closedAt, { what: "B's stream to close", timeoutMs: 5_000 });
    assert.ok(closedAt - at < 1000, `B's stream closed ${closedAt - at} ms after the revoke was sent`);
    await b.getByText(/revoked|not found/i).first().waitFor({ timeout: 5_000 });
    await a.getByTestId('share-bob').waitFor({ state: 'detached', timeout: 5_000 });
    await a.getByTestId('watched-notice').waitFor({ state: 'detached', timeout: 15_000 });
    await b.screenshot({ path: path.join(SCREENSHOT_DIR, 'sharing-revoked.png') });
  });

  test('a control share lets B type, and A sees that B watches with control', async () => {
    await a.getByTestId('share-user').fill('bob');
    await a.getByTestId('share-user-mode').selectOption('control');
    await a.getByTestId('share-user-add').click();
    await a.getByTestId('share-bob').filter({ hasText: 'Control' }).waitFor({ timeout: 15_000 });

    // B finds it among their sessions, shared with them, and opens it.
    await b.goto(`${sortie.url}/#/sessions`);
    await b.getByTestId(`shared-by-${sessionId}`).filter({ hasText: 'shared by alice' }).waitFor({ timeout: 15_000 });
    await b.getByTestId(`open-${sessionId}`).click();
    await b.getByTestId('watching-notice').filter({ hasText: 'alice shared this session with you; you have control' }).waitFor({ timeout: 30_000 });
    await b.getByTestId('viewer-status').filter({ hasText: 'running' }).waitFor({ timeout: 15_000 });
    await b.locator('.stream-label--connected').waitFor({ timeout: 30_000 });
    await a.getByTestId('watched-notice').filter({ hasText: 'Being watched by bob with control' }).waitFor({ timeout: 15_000 });

    await canvasOf(b).click({ position: { x: 70, y: 50 } });
    await b.keyboard.type('typed by bob');
    await b.keyboard.press('Enter');
    await waitFor(() => typed().endsWith('typed by bob\n'), { what: "B's line in the app", timeoutMs: 15_000 });
    assert.equal(typed(), 'hello from alice\nsecond\ntyped by bob\n');
  });
});
