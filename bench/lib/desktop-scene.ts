import type { Page } from 'playwright-core';
import { viewerUrl } from './desktop-page.js';
import { sleep, waitFor } from '../../server/test/support/wait.js';

/** Where the first character cell and the cursor of the terminal at +0+0 are (cells are 6x13 px, 2 px border). */
export const ECHO_REGION = { x: 0, y: 0, w: 48, h: 30 };
/** Typed in the scene: each line is echoed as typed and again by `cat` after Enter, 24 rows in all, so the 20-row terminal scrolls. */
export const SCENE_LINES = Array.from({ length: 12 }, (_, i) => `line ${String(i + 1).padStart(2, '0')}: brown fox`);
export const SCENE_KEY_DELAY_MS = 8;

/** The viewer page's WebSocket payload counters (RFB bytes and messages each way). */
export interface Counts {
  rx: number;
  tx: number;
  rxMessages: number;
  txMessages: number;
}

export const counts = (page: Page) => page.evaluate(() => (globalThis as any).bench.counts() as Counts);
export const look = (page: Page) => page.evaluate((r) => (globalThis as any).bench.look(r) as { white: number; hash: number }, ECHO_REGION);

/**
 * Opens the viewer page on `wsUrl` and waits until the canvas shows the terminal, then moves
 * the pointer into it (there is no window manager: the keyboard goes where the pointer is).
 */
export async function openViewer(page: Page, origin: string, wsUrl: string, label: string): Promise<void> {
  await page.goto(viewerUrl(origin, wsUrl));
  await waitFor(
    async () => {
      const state = await page.evaluate(() => (globalThis as any).bench?.state() as { connected: boolean; ended: string } | undefined);
      if (state?.ended) throw new Error(`${label}: the viewer ${state.ended}`);
      return state?.connected && (await look(page)).white > 100;
    },
    { what: `${label}: the terminal on the canvas`, timeoutMs: 20_000 },
  );
  await page.mouse.move(300, 200);
}

/** The typed part of the scene: SCENE_LINES into the terminal, each followed by Enter. */
export async function typeSceneLines(page: Page): Promise<void> {
  for (const line of SCENE_LINES) {
    await page.keyboard.type(line, { delay: SCENE_KEY_DELAY_MS });
    await page.keyboard.press('Enter');
  }
}

/**
 * Waits until nothing arrives for 600 ms and the echo region holds still. After the scene
 * Xvnc goes on sending a few small messages (a few hundred bytes in all) for 15-25 s on
 * this machine before it falls quiet, hence the long limit.
 */
export async function settle(page: Page): Promise<void> {
  let last = await counts(page);
  let lastLook = await look(page);
  let stillSince = Date.now();
  const deadline = Date.now() + 60_000;
  while (Date.now() - stillSince < 600) {
    if (Date.now() > deadline) throw new Error('the desktop did not settle within 60 s');
    await sleep(100);
    const now = await counts(page);
    const nowLook = await look(page);
    if (now.rx !== last.rx || nowLook.hash !== lastLook.hash) stillSince = Date.now();
    last = now;
    lastLook = nowLook;
  }
}
