import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.js';
import { ConfigError } from '../src/errors.js';
import { CloseCode } from '../src/stream/close-codes.js';
import { Api } from './support/api.js';
import { exitOf, startSortieProcess, type SortieProcess } from './support/child.js';
import { closeFrameIn } from './support/close-frame.js';
import { scratchDir, writeApps } from './support/harness.js';
import { localSessionRecord } from './support/processes.js';
import { frameRequest, overWebSocket, RfbViewer, SECURITY_NONE } from './support/rfb.js';
import { waitFor } from './support/wait.js';

// The stream path under a signed-in user who means harm, against Sortie as its own process
// and a real local session (Xvnc, websockify): an endless frame in the handshake, a
// viewer that never reads, and more viewers than a session may have. Memory is measured
// from /proc and reported; the assertions are about bounds a person relies on, not speed.

const ADMIN_PASSWORD = 'stream-bounds-admin-pw';
const MAX_VIEWERS = 8;
const MiB = 1024 * 1024;

/** Resident memory of a process in bytes (0 once it is gone). */
function rss(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** `pid` and every process below it (websockify forks one child per viewer). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** Samples `measure` every `everyMs` until stopped; keeps the peak. */
function sampler(measure: () => number, everyMs: number): { peak: () => number; stop: () => number } {
  let peak = measure();
  const timer = setInterval(() => (peak = Math.max(peak, measure())), everyMs);
  return {
    peak: () => peak,
    stop: () => {
      clearInterval(timer);
      return (peak = Math.max(peak, measure()));
    },
  };
}

describe('bounds on the stream path', () => {
  const scratch = scratchDir('stream-bounds');
  const stateDir = path.join(scratch.dir, 'local-sessions');
  let sortie: SortieProcess;
  let token = '';
  let sessionId = '';
  let wsUrl = '';
  let log = '';

  const api = <T>(method: string, urlPath: string, body?: unknown) => new Api(sortie.url).as(token || undefined).request<T>(method, urlPath, body);

  /** A signed-in viewer led through the RFB handshake up to ServerInit. */
  const viewer = async (): Promise<{ ws: WebSocket; width: number; height: number }> => {
    const rfb = new RfbViewer(overWebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } }));
    const { banner, offered } = await rfb.greet();
    assert.equal(banner, 'RFB 003.008');
    assert.deepEqual(offered, [SECURITY_NONE]);
    assert.equal(await rfb.authenticate(offered), true);
    const { width, height } = await rfb.init();
    return { ws: rfb.ws, width, height };
  };

  /**
   * Waits until the session takes `count` viewers at once again: every place the test's
   * viewers held is given back. Sortie frees a place when its side of the socket closes,
   * which may come a moment after the viewer's side did.
   */
  const placesFree = (count: number) =>
    waitFor(
      async () => {
        const opened = await Promise.allSettled(Array.from({ length: count }, () => viewer()));
        const ok = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value.ws] : []));
        for (const ws of ok) ws.close(1000);
        await Promise.all(ok.map((ws) => (ws.readyState === WebSocket.CLOSED ? undefined : once(ws, 'close'))));
        return ok.length === count;
      },
      { what: `${count} viewer places to be free`, timeoutMs: 10_000 },
    );

  before(async () => {
    sortie = await startSortieProcess({
      SORTIE_AUTH: 'enabled',
      SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SORTIE_APPS_FILE: writeApps(scratch.dir, [{ id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: 'unused', command: ['xterm'] }]),
      SORTIE_DB_PATH: path.join(scratch.dir, 'sortie.db'),
      SORTIE_LOCAL_STATE_DIR: stateDir,
      SORTIE_MAX_VIEWERS_PER_SESSION: String(MAX_VIEWERS),
    });
    sortie.child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-64 * 1024)));
    const login = await api<{ access_token: string }>('POST', '/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    token = login.body.access_token;
    const created = await api<{ id: string; websocket_url: string }>('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    sessionId = created.body.id;
    wsUrl = sortie.url.replace(/^http/, 'ws') + created.body.websocket_url;
    await waitFor(
      async () => {
        const s = await api<{ status: string; reason?: string }>('GET', `/api/sessions/${sessionId}`);
        if (s.body.status === 'running') return true;
        assert.ok(['creating', 'queued'].includes(s.body.status), `session is ${s.body.status}: ${s.body.reason}`);
        return false;
      },
      { what: 'the session to run', timeoutMs: 30_000, intervalMs: 100 },
    );
  });

  after(async () => {
    if (sortie) {
      if (sortie.child.exitCode !== null) console.error(`Sortie exited during the test: ${sortie.stderr().slice(-4000)}`);
      else if (sessionId) await api('DELETE', `/api/sessions/${sessionId}`).catch(() => undefined);
      // Ctrl-C stops at once; SIGTERM would linger for the drain, which is not tested here.
      sortie.child.kill('SIGINT');
      await exitOf(sortie.child);
      // Sessions outlive Sortie by design; if it could not end this one, end its processes here.
      if (sessionId && existsSync(path.join(stateDir, `${sessionId}.json`))) {
        for (const { pid } of localSessionRecord(stateDir, sessionId).processes) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    }
    scratch.remove();
  });

  test('SORTIE_MAX_VIEWERS_PER_SESSION is a whole number of at least 1', () => {
    assert.equal(loadConfig({}).maxViewersPerSession, 5);
    assert.equal(loadConfig({ SORTIE_MAX_VIEWERS_PER_SESSION: '2' }).maxViewersPerSession, 2);
    for (const bad of ['0', '-1', '2.5', 'many']) {
      assert.throws(
        () => loadConfig({ SORTIE_MAX_VIEWERS_PER_SESSION: bad }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(`SORTIE_MAX_VIEWERS_PER_SESSION must be a whole number of viewers, at least 1, got "${bad}"`),
      );
    }
  });

  test(`a session streams to ${MAX_VIEWERS} viewers; the next is refused with 4429 until one leaves`, async () => {
    const viewers = [];
    for (let i = 0; i < MAX_VIEWERS; i++) viewers.push(await viewer());
    const extra = new WebSocket(wsUrl, ['binary'], { headers: { authorization: `Bearer ${token}` } });
    const [code, reason] = (await once(extra, 'close')) as [number, Buffer];
    assert.equal(code, CloseCode.TooManyViewers);
    assert.equal(reason.toString(), `This session already has ${MAX_VIEWERS} viewers, the most allowed; close one and try again`);

    const first = viewers.shift()!;
    first.ws.close(1000);
    await once(first.ws, 'close');
    await waitFor(
      async () => {
        try {
          viewers.push(await viewer());
          return true;
        } catch {
          return false;
        }
      },
      { what: 'the place to be free again' },
    );
    for (const v of viewers) v.ws.close(1000);
    await Promise.all(viewers.map((v) => (v.ws.readyState === WebSocket.CLOSED ? undefined : once(v.ws, 'close'))));
    await placesFree(MAX_VIEWERS);
  });

  test('eight endless handshake frames close with 4413 and do not grow the server', async (t) => {
    const connections = 8;
    const perConnection = 16 * MiB;
    const pid = sortie.child.pid!;
    const { port } = new URL(sortie.url);
    const base = rss(pid);
    const memory = sampler(() => rss(pid), 20);

    const endless = async () => {
      const socket = net.connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      await once(socket, 'connect');
      // Sortie may reset the connection while this side still sends; that is an ending too.
      let open = true;
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      void closed.then(() => (open = false));
      const received: Buffer[] = [];
      socket.on('data', (c: Buffer) => received.push(c));
      socket.write(
        `GET ${new URL(wsUrl).pathname} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Authorization: Bearer ${token}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n`,
      );
      // A masked binary frame announcing 2^40 bytes, then as much of it as Sortie takes.
      const header = Buffer.alloc(14);
      header[0] = 0x82;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(2n ** 40n, 2);
      socket.write(header);
      const chunk = Buffer.alloc(64 * 1024);
      let sent = 0;
      while (open && sent < perConnection) {
        sent += chunk.length;
        if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
      }
      socket.end();
      await closed;
      const bytes = Buffer.concat(received);
      return { sent, status: bytes.toString('latin1', 0, 12), close: closeFrameIn(bytes.subarray(bytes.indexOf('\r\n\r\n') + 4)) };
    };

    const results = await Promise.all(Array.from({ length: connections }, endless));
    const peak = memory.stop();
    const growth = Math.max(0, peak - base);
    t.diagnostic(`Sortie RSS: ${(base / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB (+${(growth / MiB).toFixed(1)} MiB) with ${connections} endless frames`);
    t.diagnostic(`bytes each connection got to send before Sortie closed it: ${results.map((r) => r.sent).join(', ')}`);
    for (const r of results) {
      assert.equal(r.status, 'HTTP/1.1 101');
      assert.deepEqual(r.close, { code: CloseCode.HandshakeTooLarge, reason: 'The viewer sent more than the 4096 bytes the VNC handshake needs' });
    }
    assert.ok(growth < 64 * MiB, `Sortie grew by ${(growth / MiB).toFixed(1)} MiB under ${connections} endless handshake frames`);
    assert.equal((await api('GET', '/healthz')).status, 200, 'Sortie still serves');
    // The closed connections hold no viewer place.
    await placesFree(MAX_VIEWERS);
  });

  test('a viewer that never reads is cut with 4408 and websockify stays bounded', async (t) => {
    const websockifyPid = localSessionRecord(stateDir, sessionId).processes.find((p) => p.role === 'websockify')!.pid;
    const websockifyRss = () => processTree(websockifyPid).reduce((sum, p) => sum + rss(p), 0);
    const sortiePid = sortie.child.pid!;
    const { ws, width, height } = await viewer();
    ws.removeAllListeners('message'); // what is queued is read and dropped, not kept
    const closed = once(ws, 'close') as Promise<[number, Buffer]>;
    let wsError = '';
    ws.on('error', (err) => (wsError = err.message));
    const base = { websockify: websockifyRss(), sortie: rss(sortiePid) };
    const websockify = sampler(websockifyRss, 100);
    const sortieMemory = sampler(() => rss(sortiePid), 100);
    const logAt = log.length;

    // Stop reading, and keep asking for full screens in the biggest encoding there is.
    ws.pause();
    ws.send(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0])); // SetEncodings: Raw only
    const request = frameRequest(width, height);
    const limit = 256 * MiB; // where the test stops feeding a relay that does not cut
    const started = Date.now();
    let outcome = '';
    while (!outcome) {
      if (ws.readyState === WebSocket.OPEN) ws.send(request);
      await new Promise((r) => setTimeout(r, 10));
      if (log.slice(logAt).includes('"msg":"viewer cut"')) outcome = 'cut';
      else if (websockify.peak() - base.websockify > limit) outcome = 'websockify grew past the limit';
      else if (Date.now() - started > 60_000) outcome = 'not cut within 60 s';
    }
    const cutAfter = Date.now() - started;
    if (outcome !== 'cut') ws.terminate();
    ws.resume(); // read what was queued, and then the close frame
    const [code, reason] = await closed;
    await new Promise((r) => setTimeout(r, 300)); // websockify's child for this viewer ends
    const peak = { websockify: websockify.stop(), sortie: sortieMemory.stop() };
    t.diagnostic(
      `websockify RSS (process and children): ${(base.websockify / MiB).toFixed(1)} MiB before, peak ${(peak.websockify / MiB).toFixed(1)} MiB ` +
        `(+${((peak.websockify - base.websockify) / MiB).toFixed(1)} MiB); Sortie peak +${((peak.sortie - base.sortie) / MiB).toFixed(1)} MiB; outcome: ${outcome} after ${cutAfter} ms`,
    );
    assert.equal(outcome, 'cut');
    assert.equal(code, CloseCode.ViewerTooSlow, `closed with ${code} ${reason.toString()} ${wsError} ${sortie.stderr().slice(-3000)}; Sortie said: ${log.slice(logAt).split('\n').filter((l) => l.includes('viewer')).join('\n')}`);
    assert.match(reason.toString(), /^The viewer (fell more than 16 MiB behind|took none of) the desktop stream/);
    assert.ok(peak.websockify - base.websockify < 64 * MiB, `websockify grew by ${((peak.websockify - base.websockify) / MiB).toFixed(1)} MiB`);
    assert.ok(peak.sortie - base.sortie < 128 * MiB, `Sortie grew by ${((peak.sortie - base.sortie) / MiB).toFixed(1)} MiB`);
  });
});
