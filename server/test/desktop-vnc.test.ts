import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { homeDirPath, xauthFilePath } from '../src/runners/local/state-file.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { awaitMessage, fullUpdatePixels, openDeskView, resize, type DeskView } from './support/desk.js';
import { localSessionRecord } from './support/processes.js';
import {
  Clip,
  clientClipboard,
  clientCutText,
  clipboardProvide,
  Encoding,
  type ServerMessage,
} from './support/rfb.js';
import { sleep, waitFor } from './support/wait.js';

// The desktop a person works in, on the real local runner: TigerVNC's Xvnc behind Sortie's
// relay. A viewer resizes the desktop with RFB SetDesktopSize and the X server takes the new
// size; text moves between the viewer's clipboard and the X selections in the directions the
// app's "clipboard" setting allows, and in no other, whatever the RFB client sends. The X
// side is read with X clients (xdpyinfo, xclip, vncconfig) holding the session's own cookie.

const execFileAsync = promisify(execFile);
/** An X client on the session's display; one that hangs fails the test instead. */
const run = (program: string, args: string[], options: { env: NodeJS.ProcessEnv }) => execFileAsync(program, args, { ...options, timeout: 10_000 });
const CLIPBOARD_SETTINGS = ['both', 'to_session', 'from_session', 'none'] as const;
type Setting = (typeof CLIPBOARD_SETTINGS)[number];

const apps = CLIPBOARD_SETTINGS.map((clipboard) => ({
  id: `clip-${clipboard.replace('_', '-')}`,
  name: `Clipboard ${clipboard}`,
  launch_type: 'container',
  container_image: 'unused',
  command: ['sleep', 'infinity'],
  clipboard,
}));

/** A session's desktop, seen from both ends: a viewer through Sortie, and X clients on its display. */
interface Desk extends DeskView {
  /** DISPLAY and XAUTHORITY for an X client on the session's display. */
  xEnv: NodeJS.ProcessEnv;
  owners: ChildProcess[];
}

let sortie: TestSortie;
const desks: Desk[] = [];

before(async () => {
  // Each test opens its own session; the last ones of a failed test may still be ending.
  sortie = await startTestSortie({ name: 'desktop-vnc', apps, env: { SORTIE_MAX_SESSIONS_PER_USER: '20' } });
});

after(async () => {
  for (const desk of desks) {
    desk.viewer.close();
    for (const owner of desk.owners) owner.kill('SIGKILL');
  }
  await sortie?.cleanup();
});

/** Launches an app, opens its stream through Sortie and reads the first update. */
async function openDesk(appId: string, encodings: number[] = []): Promise<Desk> {
  const session = await sortie.api.launch(appId);
  await sortie.api.waitFor(session.id, 'running');
  const { display } = localSessionRecord(sortie.stateDir, session.id);
  const desk: Desk = {
    ...(await openDeskView(sortie, session.id, encodings)),
    // The display's cookie, which the app holds a copy of in its sandbox.
    xEnv: { PATH: process.env.PATH, LANG: 'C.UTF-8', DISPLAY: `:${display}`, XAUTHORITY: xauthFilePath(sortie.stateDir, session.id) },
    owners: [],
  };
  desks.push(desk);
  return desk;
}

/** Closes the viewer and ends the session (the after hook ends what a failed test left). */
async function endDesk(desk: Desk): Promise<void> {
  desk.viewer.close();
  for (const owner of desk.owners) owner.kill('SIGKILL');
  const ended = await sortie.api.end(desk.id);
  assert.equal(ended.status, 200);
}

/** The X screen's size, as an X client on the session's display sees it. */
async function xScreenSize(desk: Desk): Promise<string> {
  const { stdout } = await run('xdpyinfo', [], { env: desk.xEnv });
  return /dimensions:\s+(\d+x\d+) pixels/.exec(stdout)![1]!;
}

/** What an X client pasting from `selection` gets, or undefined when nothing holds it. */
async function xPaste(desk: Desk, selection: 'clipboard' | 'primary'): Promise<string | undefined> {
  try {
    const { stdout } = await run('xclip', ['-o', '-selection', selection, '-t', 'UTF8_STRING'], { env: desk.xEnv });
    return stdout;
  } catch {
    return undefined;
  }
}

/** An X client copies `text` to the CLIPBOARD selection (and keeps serving it). */
async function xCopy(desk: Desk, text: string): Promise<void> {
  const owner = spawn('xclip', ['-i', '-quiet', '-selection', 'clipboard'], { env: desk.xEnv, stdio: ['pipe', 'ignore', 'ignore'] });
  desk.owners.push(owner);
  owner.stdin.end(text);
  await waitFor(async () => (await xPaste(desk, 'clipboard')) === text, { what: 'the X clipboard to hold the copied text' });
}

/** Whether the server passes text from the X clipboard to a plain RFB viewer: the text it sent, or undefined. */
async function copiedOut(desk: Desk, text: string): Promise<string | undefined> {
  await xCopy(desk, text);
  // The server sends cut text as soon as it learns the selection changed; a second is ample
  // for that, and the resize answer then marks the end of what it sent meanwhile.
  await sleep(1000);
  const { before } = await resize(desk, 1024, desk.screens[0]!.height === 640 ? 600 : 640);
  const cut = before.find((m): m is Extract<ServerMessage, { type: 'cut' }> => m.type === 'cut');
  return cut?.text;
}

/** Whether the server takes a plain RFB viewer's cut text into the X selections. */
async function pastedIn(desk: Desk, text: string): Promise<{ clipboard?: string; primary?: string }> {
  desk.viewer.send(clientCutText(text));
  // Messages are handled in order: once the resize is answered, the cut text was handled.
  await resize(desk, 1024, desk.screens[0]!.height === 640 ? 600 : 640);
  return { clipboard: await xPaste(desk, 'clipboard'), primary: await xPaste(desk, 'primary') };
}

describe('a session desktop on the local runner (Xvnc)', { timeout: 120_000 }, () => {
  test('a viewer resizes the desktop through Sortie with SetDesktopSize, and the X screen takes the size', async () => {
    const desk = await openDesk('clip-both');
    assert.deepEqual([desk.desktop.width, desk.desktop.height], [1280, 800], 'the default size');
    assert.equal(desk.screens.length, 1, 'ExtendedDesktopSize names the screen');
    assert.deepEqual([desk.screens[0]!.width, desk.screens[0]!.height], [1280, 800]);
    assert.equal(await xScreenSize(desk), '1280x800');

    const answer = await resize(desk, 1600, 900);
    assert.deepEqual({ status: answer.status, width: answer.width, height: answer.height }, { status: 0, width: 1600, height: 900 });
    assert.equal(await xScreenSize(desk), '1600x900');

    // A desktop that would take gigabytes is refused (status 3, out of resources), and the
    // session goes on at its size.
    const huge = await resize(desk, 32000, 32000);
    assert.notEqual(huge.status, 0);
    assert.equal(await xScreenSize(desk), '1600x900');
    assert.equal((await sortie.api.session(desk.id)).status, 'running');

    // A phone turned upright: narrower than tall.
    const upright = await resize(desk, 720, 1280);
    assert.equal(upright.status, 0);
    assert.equal(await xScreenSize(desk), '720x1280');
    // The viewer draws the new desktop whole. As noVNC does, it asks again after each update:
    // the server answers a full request with the desktop's size first, then the pixels.
    assert.equal(await fullUpdatePixels(desk, 720, 1280), 720 * 1280);
    await endDesk(desk);
  });

  test('"both": text pasted in a plain RFB viewer lands in the X clipboard and selection, and text copied in X arrives', async () => {
    const desk = await openDesk('clip-both');
    assert.deepEqual(await pastedIn(desk, 'to the app: café'), { clipboard: 'to the app: café', primary: 'to the app: café' });
    // Plain RFB cut text is Latin-1: what it cannot hold arrives as "?".
    const out = await copiedOut(desk, 'from the app: é € 日本');
    assert.equal(out, 'from the app: é ? ??');
    await endDesk(desk);
  });

  test('"both" with the extended clipboard: Unicode text survives both ways', async () => {
    const desk = await openDesk('clip-both', [Encoding.ExtendedClipboard]);
    const { viewer } = desk;
    const isCaps = (m: ServerMessage) => m.type === 'clipboard' && (m.flags & Clip.caps) !== 0;
    const caps = desk.early.find(isCaps) ?? (await awaitMessage(desk, 'clipboard capabilities', isCaps));
    assert.ok(((caps as { flags: number }).flags & Clip.text) !== 0, 'the server offers UTF-8 text');
    const size = Buffer.alloc(4);
    size.writeUInt32BE(1 << 20);
    viewer.send(clientClipboard(Clip.caps | Clip.text | Clip.request | Clip.peek | Clip.notify | Clip.provide, size));

    // Out of the session: the server announces new text, the viewer asks for it.
    const fromApp = 'from the app: é € 日本 ✓';
    await xCopy(desk, fromApp);
    const notice = await awaitMessage(desk, 'notice of the copied text', (m) => m.type === 'clipboard' && (m.flags & (Clip.notify | Clip.provide)) !== 0);
    if ((notice as { flags: number }).flags & Clip.notify) viewer.send(clientClipboard(Clip.request | Clip.text));
    const provided = notice.type === 'clipboard' && notice.text !== undefined ? notice : await awaitMessage(desk, 'the copied text', (m) => m.type === 'clipboard' && m.text !== undefined);
    assert.equal((provided as { text: string }).text, fromApp);

    // Into the session: the viewer announces text; an X client pasting makes the server ask for it.
    const toApp = 'to the app: ß € 日本語';
    viewer.send(clientClipboard(Clip.notify | Clip.text));
    const pasting = xPaste(desk, 'clipboard');
    await awaitMessage(desk, 'a request for the announced text', (m) => m.type === 'clipboard' && (m.flags & Clip.request) !== 0);
    viewer.send(clipboardProvide(toApp));
    assert.equal(await pasting, toApp);
    await endDesk(desk);
  });

  for (const setting of ['none', 'to_session', 'from_session'] as const satisfies readonly Setting[]) {
    test(`"${setting}": the server lets text through only ${setting === 'none' ? 'in no direction' : setting === 'to_session' ? 'into the session' : 'out of the session'}, whatever the client sends`, async () => {
      const desk = await openDesk(`clip-${setting.replace('_', '-')}`, [Encoding.ExtendedClipboard]);
      const intoSession = setting === 'to_session';
      const outOfSession = setting === 'from_session';

      const { viewer } = desk;

      // The app cannot lift the setting at run time.
      for (const param of ['SendCutText=1', 'AcceptCutText=1', 'SendPrimary=1', 'SetPrimary=1']) {
        const { stderr } = await run('vncconfig', ['-set', param], { env: desk.xEnv });
        assert.match(stderr, new RegExp(`setting param ${param} failed`));
      }
      const { stdout: sendCutText } = await run('vncconfig', ['-get', 'SendCutText'], { env: desk.xEnv });
      assert.equal(sendCutText.trim(), outOfSession ? '1' : '0');

      // Into the session, plain ClientCutText.
      const pasted = await pastedIn(desk, 'pasted by the viewer');
      assert.deepEqual(pasted, intoSession ? { clipboard: 'pasted by the viewer', primary: 'pasted by the viewer' } : { clipboard: undefined, primary: undefined });

      // Into the session, extended clipboard: the viewer announces text, an X client pastes.
      viewer.send(clientClipboard(Clip.notify | Clip.text));
      const pasting = xPaste(desk, 'clipboard');
      if (intoSession) {
        await awaitMessage(desk, 'a request for the announced text', (m) => m.type === 'clipboard' && (m.flags & Clip.request) !== 0);
        viewer.send(clipboardProvide('provided by the viewer'));
        assert.equal(await pasting, 'provided by the viewer');
      } else {
        // Text nobody asked for is sent too: it must not land either.
        viewer.send(clipboardProvide('provided by the viewer'));
        const { before } = await resize(desk, 1024, 600);
        assert.deepEqual(before.filter((m) => m.type === 'clipboard' && (m.flags & Clip.request) !== 0), [], 'the server never asks for the text');
        assert.equal(await pasting, undefined, 'nothing of the viewer reaches the X clipboard');
      }

      // Out of the session: text an X client copies.
      const text = 'copied in the app';
      await xCopy(desk, text);
      await sleep(1000);
      const { before: sent } = await resize(desk, 1024, 640);
      const notices = sent.filter((m) => m.type === 'cut' || (m.type === 'clipboard' && (m.flags & (Clip.notify | Clip.provide)) !== 0));
      if (outOfSession) {
        assert.ok(notices.length > 0, 'the server tells the viewer of the copied text');
        viewer.send(clientClipboard(Clip.request | Clip.text));
        const provided = await awaitMessage(desk, 'the copied text', (m) => m.type === 'clipboard' && m.text !== undefined);
        assert.equal((provided as { text: string }).text, text);
      } else {
        assert.deepEqual(notices, [], 'no cut text and no clipboard notice reach the viewer');
        // Asking for it anyway gets nothing either.
        viewer.send(clientClipboard(Clip.request | Clip.text));
        const { before: answered } = await resize(desk, 1024, 600);
        assert.deepEqual(answered.filter((m) => m.type === 'clipboard' || m.type === 'cut'), []);
      }
      await endDesk(desk);
    });
  }
});
