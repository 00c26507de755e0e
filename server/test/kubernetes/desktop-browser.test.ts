import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { APP_CONTAINER } from '../../src/runners/kubernetes/pod-spec.js';
import { openDeskView, resize } from '../support/desk.js';
import type { TestSortie } from '../support/harness.js';
import { podExec } from '../support/pod-exec.js';
import { Clip, clientClipboard, clientCutText, clipboardProvide, Encoding, type ServerMessage } from '../support/rfb.js';
import {
  clipboardCrossesBothWays,
  copyOnPageAndReturn,
  desktopFitsOnOpening,
  desktopFollowsWindow,
  downloadFromFilesPanel,
  dropTwoFilesIntoHome,
  openViewerPage,
  pageClipboard,
  pasteOntoDesktop,
  type ViewerPage,
} from '../support/viewer-page.js';
import { sleep, waitFor } from '../support/wait.js';
import { DEMO_IMAGE, SMALL_LIMITS, startClusterDesk, type ClusterBrowserDesk } from './cluster.js';

// The desktop a person works in, in the real browser (Debian's Chromium), on a pod of the
// local cluster: text moves between the page's clipboard and the X clipboard in the pod
// (and with "clipboard": "none" in neither direction, whatever an RFB client sends), the
// desktop takes the viewer's size and follows the window, files go in by drag and drop and
// come out through the files panel. The desktop side is read from inside the pod, with X
// clients and the shell of the app's image, as the cluster's admin (`kubectl exec`).

/** The app writes a file before it starts, for the download test (under another name until it is whole). */
const WRITE_THEN_XTERM = 'cd "$HOME" && head -c 300000 /dev/urandom > .writing && mv .writing made-by-app.bin && exec xterm -geometry 80x24+0+0';
const apps = [
  { id: 'desk', name: 'Desk', category: 'Test', launch_type: 'container', container_image: DEMO_IMAGE, command: ['sh', '-c', WRITE_THEN_XTERM], resource_limits: SMALL_LIMITS },
  { id: 'locked', name: 'Locked', category: 'Test', launch_type: 'container', container_image: DEMO_IMAGE, command: ['xterm'], resource_limits: SMALL_LIMITS, clipboard: 'none' },
];

let cluster: ClusterBrowserDesk;
let sortie: TestSortie;
let browser: Browser;

before(async () => {
  cluster = await startClusterDesk({ name: 'desk-browser', apps, env: { SORTIE_MAX_SESSIONS_PER_USER: '10' }, browser: true });
  ({ sortie, browser } = cluster);
});

after(() => cluster?.cleanup());

interface PodDesk extends ViewerPage {
  pod: string;
}

async function openDesk(appId: string, viewport?: { width: number; height: number }): Promise<PodDesk> {
  const viewer = await openViewerPage(browser, sortie.url, appId, `k8s-desktop-browser-${appId}.png`, viewport);
  return { ...viewer, pod: (await sortie.api.session(viewer.sessionId)).pod_name };
}

async function closeDesk(desk: PodDesk): Promise<void> {
  await desk.context.close();
  assert.equal((await sortie.api.end(desk.sessionId)).status, 200);
}

/** A shell script in the pod's app container (its DISPLAY and HOME), with `args` as $1…. */
function inPod(desk: PodDesk, script: string, ...args: string[]) {
  return podExec(cluster.kc, cluster.namespace.name, desk.pod, APP_CONTAINER, ['sh', '-c', script, 'sh', ...args]);
}

/** The X screen's size as an X client in the pod sees it, e.g. "1280x800". */
async function xScreenSize(desk: PodDesk): Promise<string> {
  const { code, stdout, stderr } = await inPod(desk, 'xdpyinfo');
  assert.equal(code, 0, stderr);
  return /dimensions:\s+(\d+x\d+) pixels/.exec(stdout)![1]!;
}

/** What an X client in the pod pasting from the CLIPBOARD selection gets, or undefined when nothing holds it. */
async function xPaste(desk: PodDesk): Promise<string | undefined> {
  const { code, stdout } = await inPod(desk, 'xclip -o -selection clipboard -t UTF8_STRING');
  return code === 0 ? stdout : undefined;
}

/**
 * The app copies: an X client in the pod takes the CLIPBOARD selection and keeps serving it
 * (xclip stays in the background, its output away from the exec stream so the exec ends).
 */
async function xCopy(desk: PodDesk, text: string): Promise<void> {
  const { code, stderr } = await inPod(desk, 'printf %s "$1" | xclip -i -selection clipboard >/dev/null 2>&1', text);
  assert.equal(code, 0, stderr);
  await waitFor(async () => (await xPaste(desk)) === text, { what: 'the X clipboard in the pod to hold the copied text', timeoutMs: 30_000 });
}

/** A file in the pod's home as the app sees it, byte for byte (base64 over the exec stream). */
async function homeFile(desk: PodDesk, name: string): Promise<Buffer> {
  const { code, stdout, stderr } = await inPod(desk, 'base64 -w0 -- "$HOME/$1"', name);
  assert.equal(code, 0, `${name}: ${stderr}`);
  return Buffer.from(stdout, 'base64');
}

/** Cut text and clipboard notices, requests or text among what a viewer was sent (the capabilities message aside, which names formats, not text). */
const clipboardTraffic = (messages: ServerMessage[]) =>
  messages.filter((m) => m.type === 'cut' || (m.type === 'clipboard' && (m.flags & Clip.caps) === 0));

describe('a desktop in the browser on a pod of the local cluster', { timeout: 300_000 }, () => {
  test('copy in the app reaches the page’s clipboard, and the page’s clipboard and pastes reach the app', async () => {
    const desk = await openDesk('desk');
    await clipboardCrossesBothWays(desk.page, { copy: (text) => xCopy(desk, text), paste: () => xPaste(desk) }, 30_000);
    await closeDesk(desk);
  });

  test('"clipboard": "none": no text crosses in the browser, nor for an RFB client through /ws/sessions/{id}', async () => {
    const desk = await openDesk('locked');
    const { page } = desk;
    await page.locator('.viewer[data-clipboard="none"]').waitFor();
    assert.equal(await page.getByTestId('clipboard-toggle').count(), 0, 'no clipboard tool');

    // Into the session: the page's clipboard and a paste. The same steps reach the X
    // clipboard within moments under "both"; a few seconds here is ample.
    const fromPage = 'from the page, not for the app';
    await copyOnPageAndReturn(page, fromPage);
    await pasteOntoDesktop(page, 'pasted, not for the app');
    await sleep(3000);
    assert.equal(await xPaste(desk), undefined, 'nothing of the page holds the X clipboard');

    // Out of the session: the app copies, the page's clipboard keeps what it had.
    await xCopy(desk, 'copied in the app, not for the page');
    await page.getByTestId('viewer-status').hover();
    await page.getByTestId('vnc-container').hover();
    await sleep(3000);
    assert.equal(await pageClipboard(page), fromPage, 'the page’s clipboard is untouched');
    await desk.context.close();

    // An RFB client that ignores what the viewer offers: plain and extended cut text in,
    // requests for the app's text out. Messages are handled in order, so the answer to a
    // resize marks the end of what the server did with what came before it.
    const view = await openDeskView(sortie, desk.sessionId, [Encoding.ExtendedClipboard]);
    try {
      assert.deepEqual(clipboardTraffic(view.early), [], 'the app’s text is not offered on connecting');
      view.viewer.send(clientCutText('cut by the client'));
      view.viewer.send(clientClipboard(Clip.notify | Clip.text));
      view.viewer.send(clipboardProvide('provided by the client'));
      const afterPaste = await resize(view, 1024, 640);
      assert.deepEqual(clipboardTraffic(afterPaste.before), [], 'the server asks for no text and sends none');
      assert.equal(await xPaste(desk), 'copied in the app, not for the page', 'the X clipboard still holds the app’s own text');

      await xCopy(desk, 'copied again in the app');
      view.viewer.send(clientClipboard(Clip.request | Clip.text));
      // Xvnc tells viewers of a new selection as soon as it sees it; a second is ample.
      await sleep(1000);
      const afterCopy = await resize(view, 1024, 600);
      assert.deepEqual(clipboardTraffic(afterCopy.before), [], 'no cut text, no notice and no text reach the client');
    } finally {
      view.viewer.close();
    }
    assert.equal((await sortie.api.end(desk.sessionId)).status, 200);
  });

  test('"fit to window": the pod’s X screen takes the viewer’s size and follows the window', async () => {
    const desk = await openDesk('desk');
    const { page } = desk;
    const screenSize = () => xScreenSize(desk);
    await desktopFitsOnOpening(page, screenSize, 30_000);
    // Narrower, as when a person resizes the window; then upright, as a tablet turned.
    for (const viewport of [{ width: 800, height: 700 }, { width: 700, height: 1000 }]) await desktopFollowsWindow(page, viewport, screenSize, 30_000);
    await closeDesk(desk);
  });

  test('files dropped on the viewer land in the pod’s home byte for byte; a file the app wrote downloads byte for byte', async () => {
    const desk = await openDesk('desk');
    const { page } = desk;
    await dropTwoFilesIntoHome(page, (name) => homeFile(desk, name), 60_000);

    // The pod is running once its desktop is; the app may start a moment later on a busy node.
    await waitFor(async () => (await inPod(desk, 'test -f "$HOME/made-by-app.bin"')).code === 0, { what: 'the app to write its file', timeoutMs: 60_000 });
    const { suggested, savedAt } = await downloadFromFilesPanel(page, 'made-by-app.bin');
    assert.equal(suggested, 'made-by-app.bin');
    const written = await homeFile(desk, 'made-by-app.bin');
    assert.equal(written.length, 300_000);
    assert.deepEqual(readFileSync(savedAt), written, 'the download is the file the app wrote, byte for byte');
    await closeDesk(desk);
  });
});
