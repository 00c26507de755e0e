import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const novncRoot = path.join(repoRoot, 'node_modules/@novnc/novnc');
const PREFIX = '/__bench/';

const html = (width: number, height: number) => `<!doctype html>
<html><head><meta charset="utf-8"><title>desktop bench</title><link rel="icon" href="data:,">
<style>html,body{margin:0;background:#000;overflow:hidden}#screen{width:${width}px;height:${height}px}</style>
</head><body><div id="screen"></div><script type="module" src="${PREFIX}viewer.js"></script></body></html>`;

/**
 * Serves the bench's viewer page at `<any origin>/__bench/viewer.html?ws=<url>`, straight
 * from this process through Playwright's request interception (no server, no TCP, nothing
 * counted on the wire). Any origin: the page opens on the origin of whatever it connects to,
 * so Sortie sees a same-origin stream, as from its own UI, and websockify does not care.
 */
export async function serveViewer(context: BrowserContext, screen: { width: number; height: number }): Promise<void> {
  await context.route(`**${PREFIX}**`, async (route) => {
    const { pathname } = new URL(route.request().url());
    const rel = pathname.slice(PREFIX.length);
    if (rel === 'viewer.html') return route.fulfill({ contentType: 'text/html', body: html(screen.width, screen.height) });
    let file: string | undefined;
    if (rel === 'viewer.js') file = path.join(import.meta.dirname, 'desktop-viewer.js');
    else if (rel.startsWith('novnc/')) {
      file = path.resolve(novncRoot, rel.slice('novnc/'.length));
      if (!file.startsWith(novncRoot + path.sep)) file = undefined;
    }
    if (!file) return route.fulfill({ status: 404, body: 'not found' });
    try {
      return await route.fulfill({ contentType: 'text/javascript', body: await readFile(file) });
    } catch {
      return route.fulfill({ status: 404, body: 'not found' });
    }
  });
}

export function viewerUrl(origin: string, wsUrl: string): string {
  return `${origin}${PREFIX}viewer.html?ws=${encodeURIComponent(wsUrl)}`;
}
