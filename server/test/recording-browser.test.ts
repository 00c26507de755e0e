import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Recording, RecordingPage } from '../src/contract/recordings.js';
import { homeDirPath } from '../src/runners/local/state-file.js';
import type { Api } from './support/api.js';
import { launchBrowser, launchFromCatalog, SCREENSHOT_DIR, signIn } from './support/browser.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { sleep, waitFor } from './support/wait.js';

// A recorded session played back in the browser shows what the person saw live, when they
// saw it. On the local runner (Xvnc + websockify), Rita types three lines into a terminal
// in Chromium, a few seconds apart; right after each line is drawn the viewer's canvas is
// kept as a PNG with the time. Then an admin opens the Recordings tab in Chromium, finds
// the recording (user, app, start, length, size), seeks the player to each noted time and
// compares its canvas with the live one pixel by pixel, in the page. Seeking to a moment
// before the second line was typed must not show it; Play moves time and picture on, Pause
// holds them; Download gives the file Sortie wrote.

const ADMIN_PASSWORD = 'recording-browser-admin-pw';
const USER_PASSWORD = 'recording-browser-user-pw';
const TYPED = 'typed.txt';
const apps = [
  {
    id: 'recorded-typist',
    name: 'Recorded Typist',
    category: 'Test',
    launch_type: 'container',
    recording: 'always',
    // A large font, so a line of text is thousands of pixels: far above the tolerance below.
    command: ['xterm', '-fa', 'DejaVu Sans Mono', '-fs', '16', '-geometry', '70x16+0+0', '-e', 'sh', '-c', `exec cat > "$HOME/${TYPED}"`],
  },
];
const LINES = ['alpha: the first line, typed at the start', 'bravo: the second line, a few seconds later', 'charlie: the third and last line of the session'];
/** How long between lines: seeks land well inside each stretch, far from the next line's bytes. */
const GAP_MS = 3000;
/**
 * Pixels that may differ between a live screenshot and the playback at its time. The player
 * decodes the very bytes the live viewer decoded, in the same Chromium, so the pictures are
 * normally identical; the allowance covers an update that reached the live canvas between
 * its bytes being recorded and the screenshot (or the other way round) that is not part of
 * the typing, such as the terminal's text cursor changing with the pointer. Each typed line
 * changes several thousand pixels (see the check of the live screenshots), so a wrong frame
 * is far outside it.
 */
const MAX_DIFFERING_PIXELS = 200;

/** A canvas's pixels, kept as a PNG data URL (lossless), with when it was read. */
interface Shot {
  png: string;
  at: number;
}

/**
 * Runs in the page: compares the canvas under `selector` with a PNG data URL, channel by
 * channel; answers with both sizes and how many pixels differ.
 */
const COMPARE = `async (selector, png) => {
  const canvas = document.querySelector(selector);
  if (!canvas) return { error: 'no canvas under ' + selector };
  const image = new Image();
  image.src = png;
  await image.decode();
  const size = canvas.width + 'x' + canvas.height;
  const expected = image.naturalWidth + 'x' + image.naturalHeight;
  if (size !== expected) return { size, expected, differing: -1 };
  const scratch = document.createElement('canvas');
  scratch.width = canvas.width;
  scratch.height = canvas.height;
  const context = scratch.getContext('2d');
  context.drawImage(image, 0, 0);
  const want = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const have = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let differing = 0;
  for (let i = 0; i < want.length; i += 4) {
    if (want[i] !== have[i] || want[i + 1] !== have[i + 1] || want[i + 2] !== have[i + 2]) differing++;
  }
  return { size, expected, differing };
}`;

interface Comparison {
  error?: string;
  size: string;
  expected: string;
  /** -1 when the sizes differ. */
  differing: number;
}

const LIVE_CANVAS = '[data-testid=vnc-container] canvas';
const PLAYBACK_CANVAS = '[data-testid=recording-screen] canvas';

let sortie: TestSortie;
let admin: Api;
let browser: Browser;
let closeBrowser: () => Promise<void>;
const contexts: BrowserContext[] = [];
/** What the pages complained about, said alongside a failure. */
const pageProblems: string[] = [];

before(async () => {
  sortie = await startTestSortie({ name: 'recording-browser', apps, env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD, SORTIE_MAX_SESSIONS_PER_USER: '10' } });
  admin = await sortie.signIn('admin', ADMIN_PASSWORD);
  await admin.createUser('rita', USER_PASSWORD);
  ({ browser, close: closeBrowser } = await launchBrowser());
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await closeBrowser?.();
  await sortie?.cleanup();
  if (pageProblems.length > 0) console.log(`what the pages reported:\n${pageProblems.join('\n')}`);
});

async function signedInPage(username: string, password: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageProblems.push(`${username}: page error: ${err.message}`));
  await page.goto(sortie.url);
  await signIn(page, username, password);
  return page;
}

async function canvasPng(page: Page, selector: string): Promise<string> {
  return page.evaluate(`document.querySelector(${JSON.stringify(selector)}).toDataURL('image/png')`);
}

/** The canvas once it has stopped changing (the same pixels twice, 300 ms apart), and when that was seen. */
async function settled(page: Page, selector: string, what: string): Promise<Shot> {
  let last = await canvasPng(page, selector);
  return waitFor(
    async () => {
      await sleep(300);
      const now = await canvasPng(page, selector);
      const same = now === last;
      last = now;
      return same && { png: now, at: Date.now() };
    },
    { what: `${what} to stop changing`, timeoutMs: 15_000, intervalMs: 0 },
  );
}

function compare(page: Page, selector: string, png: string): Promise<Comparison> {
  return page.evaluate(`(${COMPARE})(${JSON.stringify(selector)}, ${JSON.stringify(png)})`);
}

/** Differing pixels between two PNGs, compared in `page` (any page will do). */
async function pngDifference(page: Page, a: string, b: string): Promise<number> {
  const result = await page.evaluate<Comparison>(`(async () => {
    const holder = document.createElement('canvas');
    holder.id = 'png-difference';
    const image = new Image();
    image.src = ${JSON.stringify(a)};
    await image.decode();
    holder.width = image.naturalWidth;
    holder.height = image.naturalHeight;
    holder.getContext('2d').drawImage(image, 0, 0);
    document.body.appendChild(holder);
    try {
      return await (${COMPARE})('#png-difference', ${JSON.stringify(b)});
    } finally {
      holder.remove();
    }
  })()`);
  assert.equal(result.size, result.expected, 'the live screenshots have one size');
  return result.differing;
}

function savePng(name: string, png: string): void {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  writeFileSync(path.join(SCREENSHOT_DIR, name), Buffer.from(png.replace(/^data:image\/png;base64,/, ''), 'base64'));
}

/** Moves the player's position slider to `ms` as dragging it does: an input event, then change on letting go (the slider steps by 100 ms). */
async function seek(page: Page, ms: number): Promise<void> {
  await page.evaluate(`(() => {
    const slider = document.querySelector('[data-testid=recording-seek]');
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(slider, ${JSON.stringify(String(Math.round(ms)))});
    slider.dispatchEvent(new Event('input', { bubbles: true }));
    slider.dispatchEvent(new Event('change', { bubbles: true }));
  })()`);
}

/** Where the player is, in ms from the recording's start, as the page shows it. */
async function position(page: Page): Promise<number> {
  return Number(await page.getByTestId('recording-time').getAttribute('data-ms'));
}

describe('a recorded session played back in the browser', { timeout: 240_000 }, () => {
  test('what was typed shows in playback at the times it was typed; play, pause, seek and download work', async (t) => {
    // Live: Rita types three lines, a few seconds apart, and the canvas is kept after each.
    const live = await signedInPage('rita', USER_PASSWORD);
    const { sessionId } = await launchFromCatalog(live, sortie.url, 'recorded-typist', 'recording-browser-live.png');
    await live.getByTestId('viewer-recorded').waitFor();
    const canvas = live.locator(LIVE_CANVAS);
    await canvas.click({ position: { x: 60, y: 40 } });
    const file = path.join(homeDirPath(sortie.stateDir, sessionId), TYPED);
    let shown = await settled(live, LIVE_CANVAS, 'the live desktop');
    const shots: Shot[] = [];
    const typedAt: number[] = [];
    for (const [i, line] of LINES.entries()) {
      if (i > 0) await sleep(GAP_MS);
      typedAt.push(Date.now());
      await live.keyboard.type(line);
      await live.keyboard.press('Enter');
      const expected = `${LINES.slice(0, i + 1).join('\n')}\n`;
      await waitFor(() => existsSync(file) && readFileSync(file, 'utf8') === expected, { what: `line ${i + 1} to reach the app`, timeoutMs: 15_000 });
      const before = shown.png;
      await waitFor(async () => (await canvasPng(live, LIVE_CANVAS)) !== before, { what: `line ${i + 1} to be drawn`, timeoutMs: 15_000 });
      shown = await settled(live, LIVE_CANVAS, `the canvas after line ${i + 1}`);
      shots.push(shown);
      savePng(`recording-browser-live-${i + 1}.png`, shown.png);
    }
    for (let i = 1; i < shots.length; i++) {
      const changed = await pngDifference(live, shots[i - 1]!.png, shots[i]!.png);
      t.diagnostic(`line ${i + 1} changed ${changed} pixels of the live canvas`);
      assert.ok(changed > 10 * MAX_DIFFERING_PIXELS, `line ${i + 1} changed ${changed} pixels, far more than the ${MAX_DIFFERING_PIXELS} a playback frame may differ by`);
    }
    // The session goes on a while after the last line, so its moment lies inside the recording.
    await sleep(GAP_MS);
    await live.context().close();
    assert.equal((await (await sortie.signIn('rita', USER_PASSWORD)).end(sessionId)).status, 200);

    const recording = await waitFor(
      async () => {
        const res = await admin.request<RecordingPage>('GET', '/api/admin/recordings');
        return res.body.recordings.find((r: Recording) => r.session_id === sessionId && r.ended_at !== null);
      },
      { what: 'the recording to end', timeoutMs: 15_000 },
    );
    const startedAt = Date.parse(recording.started_at);
    const at = (time: number) => time - startedAt;
    t.diagnostic(`recording ${recording.duration_ms} ms, ${recording.size_bytes} bytes; lines typed at ${typedAt.map((x) => at(x)).join(', ')} ms, drawn by ${shots.map((s) => at(s.at)).join(', ')} ms`);
    assert.ok(recording.duration_ms > at(typedAt[2]!), `the recording (${recording.duration_ms} ms) runs past the last line being typed (${at(typedAt[2]!)} ms)`);

    // Played back: the admin finds the recording in the Recordings tab.
    const page = await signedInPage('admin', ADMIN_PASSWORD);
    await page.goto(`${sortie.url}/#/admin/recordings`);
    const row = page.locator(`[data-testid=recording-row][data-recording-id="${recording.id}"]`);
    await row.waitFor({ timeout: 15_000 });
    assert.equal(await row.getByTestId('recording-user').innerText(), 'rita');
    assert.equal(await row.getByTestId('recording-app').innerText(), 'Recorded Typist');
    const startedShown = await page.evaluate<string>(`new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(${JSON.stringify(recording.started_at)}))`);
    assert.equal(await row.getByTestId('recording-started').innerText(), startedShown);
    const [minutes, seconds] = (await row.getByTestId('recording-length').innerText()).split(':').map(Number);
    assert.equal(minutes! * 60 + seconds!, Math.round(recording.duration_ms / 1000), 'the length is the recording’s');
    const sizeShown = /^([\d.]+) (B|KiB|MiB)$/.exec(await row.getByTestId('recording-size').innerText());
    assert.ok(sizeShown, 'the size is shown with its unit');
    const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2 }[sizeShown[2] as 'B' | 'KiB' | 'MiB'];
    assert.ok(Math.abs(Number(sizeShown[1]) * unit - recording.size_bytes) <= 0.05 * unit, `${sizeShown[0]} is the size of ${recording.size_bytes} bytes`);

    await row.getByTestId('recording-play').click();
    await page.getByTestId('recording-player').waitFor();
    await waitFor(async () => (await page.getByTestId('recording-toggle').isEnabled()) && (await page.locator(PLAYBACK_CANVAS).count()) === 1, {
      what: 'the recording to load into the player',
      timeoutMs: 15_000,
    });

    /** Seeks (paused) to `ms` and answers with the playback canvas once it has settled. */
    const frameAt = async (ms: number, what: string) => {
      await seek(page, ms);
      const now = await position(page);
      // The slider steps by 100 ms; past the recording's end is its end.
      const wanted = Math.min(ms, recording.duration_ms);
      assert.ok(Math.abs(now - wanted) <= 50, `the player is at ${now} ms, sought ${ms}`);
      assert.equal(await page.locator(PLAYBACK_CANVAS).count(), 1, 'one picture in the player');
      await settled(page, PLAYBACK_CANVAS, what);
      return (png: string) => compare(page, PLAYBACK_CANVAS, png);
    };
    // Out of order, so a seek backwards is also shown to land.
    for (const i of [1, 0, 2]) {
      const moment = at(shots[i]!.at);
      const matches = await frameAt(moment, `playback at line ${i + 1}`);
      const result = await matches(shots[i]!.png);
      assert.equal(result.size, result.expected, `the playback at ${moment} ms has the live canvas's size`);
      savePng(`recording-browser-playback-${i + 1}.png`, await canvasPng(page, PLAYBACK_CANVAS));
      t.diagnostic(`seeking to line ${i + 1} (${moment} ms): ${result.differing} of ${result.size} pixels differ from the live screenshot`);
      assert.ok(result.differing <= MAX_DIFFERING_PIXELS, `at ${moment} ms the playback differs from the live screenshot after line ${i + 1} in ${result.differing} pixels`);
    }

    // The slider's end (its End key) is the recording's end, where its last picture is: the
    // browser's change event after the key must not move it back to a rounded time.
    await seek(page, at(shots[0]!.at));
    await page.getByTestId('recording-seek').press('End');
    assert.equal(await position(page), recording.duration_ms, 'the slider reaches the end of the recording');
    await settled(page, PLAYBACK_CANVAS, 'the playback at the end');
    const last = await compare(page, PLAYBACK_CANVAS, shots[2]!.png);
    assert.ok(last.differing <= MAX_DIFFERING_PIXELS, `at the end the playback differs from the live screenshot after line 3 in ${last.differing} pixels`);

    // A second before the second line was typed, the playback shows the first line and not the second.
    const beforeSecond = at(typedAt[1]!) - 1000;
    assert.ok(beforeSecond > at(shots[0]!.at), 'the moment is after the first line was drawn');
    const early = await frameAt(beforeSecond, 'playback before line 2');
    const asSecond = await early(shots[1]!.png);
    t.diagnostic(`a second before line 2 was typed (${beforeSecond} ms): ${asSecond.differing} pixels differ from the screenshot after it`);
    assert.ok(asSecond.differing > 10 * MAX_DIFFERING_PIXELS, `at ${beforeSecond} ms, before line 2 was typed, the playback differs from the screenshot after it in only ${asSecond.differing} pixels`);
    assert.ok((await early(shots[0]!.png)).differing <= MAX_DIFFERING_PIXELS, 'before line 2 was typed, the playback shows line 1');

    // Play from there: time runs on past the moment line 2 was drawn; paused there (well
    // before line 3 was typed), the player holds still and shows line 2.
    const toggle = page.getByTestId('recording-toggle');
    await toggle.click();
    await toggle.filter({ hasText: 'Pause' }).waitFor({ timeout: 5000 });
    await waitFor(async () => (await position(page)) >= at(shots[1]!.at), { what: 'the playback to pass the moment line 2 was drawn', timeoutMs: 15_000 });
    await toggle.click();
    await toggle.filter({ hasText: 'Play' }).waitFor({ timeout: 5000 });
    const paused = await position(page);
    assert.ok(paused >= at(shots[1]!.at) && paused < at(typedAt[2]!), `paused at ${paused} ms, between line 2 drawn (${at(shots[1]!.at)} ms) and line 3 typed (${at(typedAt[2]!)} ms)`);
    await sleep(1000);
    assert.equal(await position(page), paused, 'paused, the time stands still');
    await settled(page, PLAYBACK_CANVAS, 'the paused playback');
    const played = await compare(page, PLAYBACK_CANVAS, shots[1]!.png);
    assert.ok(played.differing <= MAX_DIFFERING_PIXELS, `played on to ${paused} ms, the playback differs from the screenshot after line 2 in ${played.differing} pixels`);
    const slider = Number(await page.getByTestId('recording-seek').inputValue());
    assert.ok(Math.abs(slider - paused) <= 51, `the slider (${slider}) shows the position (${paused} ms), to its step of 100 ms`);

    // Download: the file as Sortie wrote it.
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('recording-download').click()]);
    assert.match(download.suggestedFilename(), /^sortie-recorded-typist-\d{4}-\d\d-\d\d-[0-9a-f]{8}\.rec$/);
    const saved = readFileSync(await download.path());
    assert.ok(saved.equals(readFileSync(path.join(sortie.dir, 'recordings', `${recording.id}.rec`))), 'the download is the recording file, byte for byte');
    assert.equal(saved.length, recording.size_bytes);
  });
});
