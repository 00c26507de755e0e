import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchFromCatalog } from './browser.js';
import { waitFor } from './wait.js';

// What a person does with the viewer page, and what the page shows: the same on either
// runner. The page-side code runs in Chromium and is written as strings, because the
// server's tsconfig has no DOM lib.

export interface ViewerPage {
  page: Page;
  context: BrowserContext;
  sessionId: string;
}

/** A fresh browser profile with the clipboard allowed, the app launched from the catalog and its desktop drawn. */
export async function openViewerPage(browser: Browser, baseUrl: string, appId: string, screenshotName: string, viewport = { width: 1200, height: 800 }): Promise<ViewerPage> {
  const context = await browser.newContext({ viewport, permissions: ['clipboard-read', 'clipboard-write'] });
  const page = await context.newPage();
  const { sessionId } = await launchFromCatalog(page, baseUrl, appId, screenshotName);
  return { page, context, sessionId };
}

/** The size of the element noVNC draws into (whole pixels), which "fit to window" asks the desktop to take. */
export async function viewerSize(page: Page): Promise<string> {
  return page.evaluate(
    '(() => { const r = document.querySelector("[data-testid=vnc-container] > div").getBoundingClientRect(); return `${Math.floor(r.width)}x${Math.floor(r.height)}`; })()',
  );
}

/**
 * On opening, "fit to window" (the default) gives the desktop the viewer's size, not the
 * 1280x800 it started at; `screenSize` reads the X screen's size on the desktop's side.
 * Answers with that size.
 */
export async function desktopFitsOnOpening(page: Page, screenSize: () => Promise<string>, timeoutMs: number): Promise<string> {
  assert.equal(await page.getByTestId('display-mode').inputValue(), 'fit', 'fit to window is the default');
  const wanted = await viewerSize(page);
  assert.notEqual(wanted, '1280x800');
  await waitFor(async () => (await screenSize()) === wanted, { what: `the X screen to take the viewer's size ${wanted}`, timeoutMs });
  return wanted;
}

/** The window takes `viewport`, as when a person resizes it or turns a tablet upright, and under "fit to window" the desktop follows. Answers with its new size. */
export async function desktopFollowsWindow(page: Page, viewport: { width: number; height: number }, screenSize: () => Promise<string>, timeoutMs: number): Promise<string> {
  await page.setViewportSize(viewport);
  await waitFor(async () => (await viewerSize(page)).startsWith(`${viewport.width}x`), { what: `the viewer to take the window width ${viewport.width}`, timeoutMs });
  const wanted = await viewerSize(page);
  await waitFor(async () => (await screenSize()) === wanted, { what: `the X screen to follow the window to ${wanted}`, timeoutMs });
  return wanted;
}

/** The canvas: its pixel size (the desktop's) and the size it is shown at on the page. */
export async function canvasSizes(page: Page): Promise<{ pixels: string; shown: string }> {
  return page.evaluate(
    '(() => { const c = document.querySelector("[data-testid=vnc-container] canvas"); const r = c.getBoundingClientRect(); return { pixels: `${c.width}x${c.height}`, shown: `${Math.round(r.width)}x${Math.round(r.height)}` }; })()',
  );
}

export async function pageClipboard(page: Page): Promise<string> {
  return page.evaluate('navigator.clipboard.readText()');
}

/** The person copies `text` on their own computer and comes back to the desktop (the viewer syncs the clipboard on entering it). */
export async function copyOnPageAndReturn(page: Page, text: string): Promise<void> {
  await page.evaluate(`navigator.clipboard.writeText(${JSON.stringify(text)})`);
  await page.getByTestId('viewer-status').hover();
  await page.getByTestId('vnc-container').hover();
}

/** A paste the browser delivers onto the desktop (its Edit menu, or the paste shortcut). */
export async function pasteOntoDesktop(page: Page, text: string): Promise<void> {
  await page.evaluate(`(() => {
    const data = new DataTransfer();
    data.setData('text/plain', ${JSON.stringify(text)});
    document.querySelector('[data-testid=vnc-container] canvas').dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  })()`);
}

/** The desktop's side of the clipboard, as X clients on the session's display see it. */
export interface DesktopClipboard {
  /** The app copies: an X client takes the CLIPBOARD selection and keeps serving it. */
  copy: (text: string) => Promise<void>;
  /** What an X client pasting from the CLIPBOARD selection gets, or undefined when nothing holds it. */
  paste: () => Promise<string | undefined>;
}

/**
 * Text crosses both ways, as under "clipboard": "both": a copy in the app reaches the page's
 * clipboard; the page's clipboard (on coming back to the desktop) and a paste the browser
 * delivers onto the desktop (its Edit menu) reach the app. Answers with the app's text, the
 * last the page was sent.
 */
export async function clipboardCrossesBothWays(page: Page, desktop: DesktopClipboard, timeoutMs: number): Promise<{ fromApp: string }> {
  const fromApp = 'from the app: café, 日本語, €';
  await desktop.copy(fromApp);
  await waitFor(async () => (await pageClipboard(page)) === fromApp, { what: 'the text copied in the app to reach the page’s clipboard', timeoutMs });

  const fromPage = 'from the page: naïve ✓ 😀';
  await copyOnPageAndReturn(page, fromPage);
  await waitFor(async () => (await desktop.paste()) === fromPage, { what: 'the page’s clipboard to reach the X clipboard', timeoutMs });

  const pasted = 'pasted from the Edit menu: ø';
  await pasteOntoDesktop(page, pasted);
  await waitFor(async () => (await desktop.paste()) === pasted, { what: 'the pasted text to reach the X clipboard', timeoutMs });
  return { fromApp };
}

/** Drops files onto the desktop as a person dragging them from their file manager does. */
export async function dropFiles(page: Page, files: { name: string; bytes: Buffer }[]): Promise<void> {
  const payload = files.map((f) => ({ name: f.name, base64: f.bytes.toString('base64') }));
  await page.evaluate(`(() => {
    const files = ${JSON.stringify(payload)};
    const data = new DataTransfer();
    for (const f of files) data.items.add(new File([Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0))], f.name));
    const target = document.querySelector('[data-testid=vnc-container] canvas');
    for (const type of ['dragenter', 'dragover', 'drop']) target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
  })()`);
}

/**
 * The person drops two files from their computer onto the desktop, one binary and one whose
 * name has a dash and an accent: the viewer says both uploads are done, and `readHome` (the
 * desktop's side) finds each in the session's home byte for byte. Answers with their names.
 */
export async function dropTwoFilesIntoHome(page: Page, readHome: (name: string) => Buffer | Promise<Buffer>, timeoutMs: number): Promise<string[]> {
  const dropped = [
    { name: 'dropped.bin', bytes: randomBytes(200_000) },
    { name: 'notes — é.txt', bytes: Buffer.from('written on my computer\n') },
  ];
  await dropFiles(page, dropped);
  await waitFor(async () => (await uploadStates(page)).filter((u) => u.state === 'done').length === dropped.length, { what: 'both uploads to finish', timeoutMs });
  for (const file of dropped) assert.deepEqual(await readHome(file.name), file.bytes, `${file.name} is in the session's home as it was`);
  return dropped.map((f) => f.name);
}

export async function uploadStates(page: Page): Promise<{ state: string | null; error: string }[]> {
  return page.evaluate(
    '[...document.querySelectorAll("[data-testid=upload-item]")].map((i) => ({ state: i.dataset.state, error: i.querySelector("[data-testid=upload-error]")?.textContent ?? "" }))',
  );
}

/** Opens the files panel (if it is closed) and downloads `name` from the home's top folder: the name the browser suggests and where it saved the file. */
export async function downloadFromFilesPanel(page: Page, name: string): Promise<{ suggested: string; savedAt: string }> {
  if ((await page.getByTestId('files-panel').count()) === 0) await page.getByTestId('files-toggle').click();
  const link = page.getByTestId(`file-${name}`).getByTestId('file-download');
  await link.waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  return { suggested: download.suggestedFilename(), savedAt: await download.path() };
}
