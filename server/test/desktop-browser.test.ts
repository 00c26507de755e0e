import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { homeDirPath, xauthFilePath } from '../src/runners/local/state-file.js';
import { launchBrowser } from './support/browser.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { localSessionRecord } from './support/processes.js';
import {
  canvasSizes,
  clipboardCrossesBothWays,
  desktopFitsOnOpening,
  desktopFollowsWindow,
  downloadFromFilesPanel,
  dropFiles,
  dropTwoFilesIntoHome,
  openViewerPage,
  uploadStates,
  viewerSize,
  type ViewerPage,
} from './support/viewer-page.js';
import { sleep, waitFor } from './support/wait.js';

// The desktop a person works in, in the real browser (Debian's Chromium) on the local
// runner: the desktop takes the viewer's size and follows it, text moves between the
// page's clipboard and the session's, files go in by drag and drop and come out through
// the files panel. The desktop side is read with X clients holding the session's cookie,
// and from the session's home folder.

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;

/** The app writes a file before it starts, for the download test. */
const WRITE_THEN_XTERM = 'cd "$HOME" && head -c 300000 /dev/urandom > made-by-app.bin && exec xterm -geometry 80x24+0+0';
const apps = [
  { id: 'desk', name: 'Desk', category: 'Test', launch_type: 'container', command: ['sh', '-c', WRITE_THEN_XTERM] },
  { id: 'locked', name: 'Locked', category: 'Test', launch_type: 'container', command: ['xterm'], clipboard: 'none', file_transfer: 'none' },
];

let sortie: TestSortie;
let browser: Browser;
let closeBrowser: () => Promise<void>;
const clipboardOwners: ChildProcess[] = [];

before(async () => {
  sortie = await startTestSortie({ name: 'desktop-browser', apps, env: { SORTIE_MAX_UPLOAD_MB: '1', SORTIE_MAX_SESSIONS_PER_USER: '10' } });
  ({ browser, close: closeBrowser } = await launchBrowser());
});

after(async () => {
  for (const owner of clipboardOwners) owner.kill('SIGKILL');
  await closeBrowser?.();
  await sortie?.cleanup();
});

interface Desk extends Omit<ViewerPage, 'sessionId'> {
  id: string;
  home: string;
  /** DISPLAY and XAUTHORITY for an X client on the session's display. */
  xEnv: NodeJS.ProcessEnv;
}

/** A fresh browser profile with the clipboard allowed, the app launched from the catalog and its desktop drawn. */
async function openDesk(appId: string, viewport?: { width: number; height: number }): Promise<Desk> {
  const { page, context, sessionId } = await openViewerPage(browser, sortie.url, appId, `desktop-browser-${appId}.png`, viewport);
  const home = homeDirPath(sortie.stateDir, sessionId);
  const { display } = localSessionRecord(sortie.stateDir, sessionId);
  return { page, context, id: sessionId, home, xEnv: { PATH: process.env.PATH, LANG: 'C.UTF-8', DISPLAY: `:${display}`, XAUTHORITY: xauthFilePath(sortie.stateDir, sessionId) } };
}

async function closeDesk(desk: Desk): Promise<void> {
  await desk.context.close();
  assert.equal((await sortie.api.end(desk.id)).status, 200);
}

/** An X client on the session's display; one that hangs fails the test instead. */
function x(desk: Desk, program: string, args: string[]) {
  return execFileAsync(program, args, { env: desk.xEnv, timeout: 10_000 });
}

/** The X screen's size as an X client on the session's display sees it, e.g. "1280x800". */
async function xScreenSize(desk: Desk): Promise<string> {
  const { stdout } = await x(desk, 'xdpyinfo', []);
  return /dimensions:\s+(\d+x\d+) pixels/.exec(stdout)![1]!;
}

/** What an X client pasting from the CLIPBOARD selection gets, or undefined when nothing holds it. */
async function xPaste(desk: Desk): Promise<string | undefined> {
  try {
    return (await x(desk, 'xclip', ['-o', '-selection', 'clipboard', '-t', 'UTF8_STRING'])).stdout;
  } catch {
    return undefined;
  }
}

describe('a desktop in the browser on the local runner', { timeout: 240_000 }, () => {
  test('"fit to window" gives the desktop the viewer’s size and follows the window; "scale" and "1:1" leave it be', async () => {
    const desk = await openDesk('desk');
    const { page } = desk;
    const screenSize = () => xScreenSize(desk);
    await desktopFitsOnOpening(page, screenSize, 20_000);
    const fitted = await desktopFollowsWindow(page, { width: 700, height: 900 }, screenSize, 20_000);

    // Scale: the window changes, the picture is scaled into it, the desktop keeps its size.
    await page.getByTestId('display-mode').selectOption('scale');
    await page.setViewportSize({ width: 1000, height: 640 });
    await waitFor(async () => (await canvasSizes(page)).shown !== fitted, { what: 'the canvas to be scaled into the new window' });
    assert.equal((await canvasSizes(page)).pixels, fitted, 'the canvas still holds the desktop at its own size');
    // Ample for a resize request (noVNC sends one within 100 ms of a change) to be answered.
    await sleep(1500);
    assert.equal(await xScreenSize(desk), fitted, 'scale does not resize the desktop');

    // 1:1: one desktop pixel per page pixel, scrolling where it does not fit.
    await page.getByTestId('display-mode').selectOption('real');
    await page.setViewportSize({ width: 600, height: 500 });
    await waitFor(async () => (await canvasSizes(page)).shown === fitted, { what: 'the canvas shown at the desktop’s own size' });
    const scrolls = await page.evaluate('(() => { const s = document.querySelector("[data-testid=vnc-container] > div"); return s.scrollHeight > s.clientHeight; })()');
    assert.equal(scrolls, true, 'the taller desktop scrolls in the smaller viewer');
    await sleep(1500);
    assert.equal(await xScreenSize(desk), fitted, '1:1 does not resize the desktop');

    // The choice is remembered in this browser; back to fit, the desktop takes the window again.
    await page.reload();
    await page.getByTestId('display-mode').waitFor();
    assert.equal(await page.getByTestId('display-mode').inputValue(), 'real', 'the choice survives a reload');
    await page.getByTestId('display-mode').selectOption('fit');
    const wanted = await viewerSize(page);
    assert.notEqual(wanted, fitted);
    await waitFor(async () => (await xScreenSize(desk)) === wanted, { what: `the X screen to take the viewer's size ${wanted} again`, timeoutMs: 20_000 });
    await closeDesk(desk);
  });

  test('copy in the app reaches the page’s clipboard, and the page’s clipboard reaches the app', async () => {
    const desk = await openDesk('desk');
    const { page } = desk;
    const xClipboard = {
      copy: async (text: string) => {
        const owner = spawn('xclip', ['-i', '-quiet', '-selection', 'clipboard'], { env: desk.xEnv, stdio: ['pipe', 'ignore', 'ignore'] });
        clipboardOwners.push(owner);
        owner.stdin.end(text);
      },
      paste: () => xPaste(desk),
    };
    const { fromApp } = await clipboardCrossesBothWays(page, xClipboard, 15_000);

    // Where the browser keeps the page from the clipboard, the panel carries text in.
    await page.getByTestId('clipboard-toggle').click();
    assert.equal(await page.getByTestId('clipboard-output').inputValue(), fromApp, 'the panel shows the app’s last copy');
    const typed = 'typed into the panel: ß';
    await page.getByTestId('clipboard-input').fill(typed);
    await page.getByTestId('clipboard-send').click();
    await waitFor(async () => (await xPaste(desk)) === typed, { what: 'the panel’s text to reach the X clipboard' });
    await closeDesk(desk);
  });

  test('files dropped on the desktop land in the home; a file the app wrote downloads byte for byte', async () => {
    const desk = await openDesk('desk');
    const { page } = desk;
    const [firstDropped] = await dropTwoFilesIntoHome(page, (name) => readFileSync(path.join(desk.home, name)), 20_000);

    // Over the upload limit: refused with words a person understands, nothing written.
    await dropFiles(page, [{ name: 'too-big.bin', bytes: Buffer.alloc(2 * MiB, 1) }]);
    const refused = await waitFor(async () => (await uploadStates(page)).find((u) => u.state === 'failed'), { what: 'the oversized upload to be refused' });
    assert.match(refused.error, /“too-big\.bin” is too large to upload \(.*upload limit of 1 MiB/);
    assert.equal(existsSync(path.join(desk.home, 'too-big.bin')), false);

    // The files panel lists the home (the uploads included) and downloads what the app wrote.
    await page.getByTestId('files-toggle').click();
    await page.getByTestId(`file-${firstDropped}`).waitFor();
    const { suggested, savedAt } = await downloadFromFilesPanel(page, 'made-by-app.bin');
    assert.equal(suggested, 'made-by-app.bin');
    assert.deepEqual(readFileSync(savedAt), readFileSync(path.join(desk.home, 'made-by-app.bin')), 'the download is the file, byte for byte');
    await closeDesk(desk);
  });

  test('an app with "clipboard": "none" and "file_transfer": "none" offers neither, and a drop uploads nothing', async () => {
    const desk = await openDesk('locked');
    const { page } = desk;
    // The viewer has read the app's settings from the catalog.
    await page.locator('.viewer[data-clipboard="none"][data-file-transfer="none"]').waitFor();
    assert.equal(await page.getByTestId('files-toggle').count(), 0, 'no files tool');
    assert.equal(await page.getByTestId('clipboard-toggle').count(), 0, 'no clipboard tool');
    await dropFiles(page, [{ name: 'should-not-arrive.txt', bytes: Buffer.from('no') }]);
    assert.equal(await page.getByTestId('upload-item').count(), 0);
    assert.equal(existsSync(path.join(desk.home, 'should-not-arrive.txt')), false);
    await closeDesk(desk);
  });
});
