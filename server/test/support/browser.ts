import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from './paths.js';

export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'test-results');

/**
 * Signs in on the sign-in form the page shows and waits until Sortie has let the person in
 * (the signed-in menu shows, so the cookie is set): navigating before that would abort the
 * sign-in request and leave the page signed out.
 */
export async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.getByTestId('signin-username').fill(username);
  await page.getByTestId('signin-password').fill(password);
  await page.getByTestId('signin-submit').click();
  await page.getByTestId('user-name').waitFor({ timeout: 15_000 });
}

/**
 * Debian's Chromium driven by playwright-core (which gives it a fresh profile). The flags
 * keep it from calling home, which on a machine without internet means refused
 * connections at every start.
 */
export async function launchBrowser(): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return { browser, close: () => browser.close() };
}

/**
 * What a person does: open Sortie, launch an app from the catalog, and wait for its
 * desktop. Resolves with the session id and how many distinct colours the noVNC canvas
 * shows (a blank or black canvas shows one).
 */
export async function launchFromCatalog(page: Page, baseUrl: string, appId: string, screenshotName: string): Promise<{ sessionId: string; colours: number }> {
  await page.goto(baseUrl);
  await page.getByTestId(`launch-${appId}`).click();
  await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}/, { timeout: 10_000 });
  const sessionId = /#\/sessions\/([0-9a-f-]{36})/.exec(page.url())![1]!;
  await page.getByTestId('viewer-status').filter({ hasText: 'running' }).waitFor({ timeout: 120_000 });
  const canvas = page.getByTestId('vnc-container').locator('canvas');
  await canvas.waitFor({ state: 'visible', timeout: 30_000 });

  // The first framebuffer update may take a moment after the canvas appears.
  let colours = 0;
  const deadline = Date.now() + 20_000;
  while (colours < 2 && Date.now() < deadline) {
    // Runs in the page; typed structurally because the server's tsconfig has no DOM lib.
    colours = await canvas.evaluate((el) => {
      const c = el as unknown as { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < data.length && seen.size < 64; i += 4 * 97) seen.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
      return seen.size;
    });
    if (colours < 2) await page.waitForTimeout(250);
  }
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, screenshotName) });
  return { sessionId, colours };
}
