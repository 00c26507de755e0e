import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Locator } from 'playwright-core';
import { loadConfig } from '../src/config/config.js';
import { launchBrowser, launchFromCatalog } from './support/browser.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { startIdleProxy, type IdleProxy } from './support/idle-proxy.js';

// A desktop left alone behind a proxy that drops silent connections, the way nginx and most
// load balancers do after 60 s: the relay's pings keep the stream open, in a real browser.
// Time runs faster here, the same race without a minute and a half of waiting: the proxy cuts
// after 8 s of silence and Sortie pings every 2 s (nginx's 60 s against the default 25 s); the
// 6 s between them leaves room for a loaded machine.

const PROXY_IDLE_MS = 8_000;
const PING_INTERVAL_SECONDS = 2;
// Half as long again as the proxy's limit: without the pings the stream is cut before the end.
const LEFT_ALONE_MS = 12_000;

let sortie: TestSortie;
let proxy: IdleProxy;
let browser: Browser;
let closeBrowser: () => Promise<void>;

before(async () => {
  sortie = await startTestSortie({ name: 'stream-keepalive', env: { SORTIE_STREAM_PING_INTERVAL: String(PING_INTERVAL_SECONDS) } });
  proxy = await startIdleProxy({ host: '127.0.0.1', port: sortie.sortie.port }, PROXY_IDLE_MS);
  ({ browser, close: closeBrowser } = await launchBrowser());
});

after(async () => {
  await closeBrowser?.();
  await proxy?.close();
  await sortie?.cleanup();
});

test('SORTIE_STREAM_PING_INTERVAL is seconds, 25 unless set, and nonsense is refused by name', () => {
  assert.equal(loadConfig({}).streamPingIntervalSeconds, 25);
  assert.equal(loadConfig({ SORTIE_STREAM_PING_INTERVAL: '10' }).streamPingIntervalSeconds, 10);
  for (const bad of ['0', '-5', 'soon']) {
    assert.throws(() => loadConfig({ SORTIE_STREAM_PING_INTERVAL: bad }), /SORTIE_STREAM_PING_INTERVAL must be a positive number/);
  }
});

/** A fingerprint of what the canvas shows, to tell whether the desktop drew something new. */
function canvasPrint(canvas: Locator): Promise<string> {
  return canvas.evaluate((el) => {
    const c = el as unknown as { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let hash = 0;
    for (let i = 0; i < data.length; i += 4) hash = (Math.imul(hash, 31) + ((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!)) | 0;
    return `${c.width}x${c.height}:${hash}`;
  });
}

test('a stream left alone for 12 s behind a proxy that cuts 8 s of silence, pinged every 2 s, stays open and still draws', async (t) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const { sessionId, colours } = await launchFromCatalog(page, proxy.url, 'xterm', 'stream-keepalive-start.png');
  assert.ok(colours >= 2, 'the desktop is drawn');
  const streamsOpened: string[] = [];
  page.on('websocket', (ws) => streamsOpened.push(ws.url()));
  const closes: string[] = [];
  page.on('websocket', (ws) => ws.on('close', () => closes.push(ws.url())));

  const canvas = page.getByTestId('vnc-container').locator('canvas');
  const before = { proxy: proxy.stats(), print: await canvasPrint(canvas) };
  await page.waitForTimeout(LEFT_ALONE_MS);
  const afterWait = proxy.stats();
  t.diagnostic(
    `proxy, in ${LEFT_ALONE_MS / 1000} s: ${afterWait.accepted - before.proxy.accepted} new connections, ${afterWait.cut - before.proxy.cut} cut for silence, of them streams: ${afterWait.streamsCut - before.proxy.streamsCut}`,
  );

  assert.equal(before.proxy.streams, 1, 'the desktop came through the proxy');
  assert.equal(afterWait.streamsCut, 0, 'the proxy cut no stream for silence');
  assert.equal(afterWait.streams, 1, 'and no new stream came through it');
  assert.deepEqual(streamsOpened, [], 'the viewer did not have to open a new stream');
  assert.match(await page.getByTestId('viewer-status').innerText(), /running/i, 'the viewer still shows the running session');

  // Still the same desktop, still live: what is typed now is drawn.
  await canvas.click();
  await page.keyboard.type('echo still here');
  let drawn = false;
  for (let i = 0; i < 40 && !drawn; i++) {
    await page.waitForTimeout(250);
    drawn = (await canvasPrint(canvas)) !== before.print;
  }
  assert.ok(drawn, 'typing after the wait changes the desktop');
  assert.deepEqual(closes, [], 'no stream closed');
  assert.equal((await sortie.api.session(sessionId)).status, 'running');
  await page.close();
});
