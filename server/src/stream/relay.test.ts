import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { CloseCode } from './close-codes.js';
import { StreamRelay, type StreamTarget } from './relay.js';
import { vncAuthResponse } from './rfb-handshake.js';

const PASSWORD = 'k3y-9zQa';

/**
 * Stands in for a session's websockify + x11vnc: an RFB 3.8 server that demands the VNC
 * password, then echoes every message. Remembers the upgrade requests it saw.
 */
function fakeVncServer(): { server: WebSocketServer; requests: http.IncomingMessage[]; ready: Promise<number> } {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const requests: http.IncomingMessage[] = [];
  server.on('connection', (ws, req) => {
    requests.push(req);
    const challenge = randomBytes(16);
    let stage: 'version' | 'type' | 'response' | 'echo' = 'version';
    ws.send(Buffer.from('RFB 003.008\n'));
    ws.on('message', (data: Buffer, isBinary) => {
      if (stage === 'echo') return ws.send(data, { binary: isBinary });
      if (stage === 'version') {
        stage = 'type';
        return ws.send(Buffer.from([1, 2]));
      }
      if (stage === 'type') {
        stage = 'response';
        return ws.send(challenge);
      }
      const ok = data.equals(vncAuthResponse(challenge, PASSWORD));
      stage = 'echo';
      if (ok) return ws.send(Buffer.from([0, 0, 0, 0]));
      const reason = Buffer.from('Authentication failed');
      ws.send(Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from([0, 0, 0, reason.length]), reason]));
      ws.close();
    });
  });
  const ready = once(server, 'listening').then(() => (server.address() as AddressInfo).port);
  return { server, requests, ready };
}

let vnc: ReturnType<typeof fakeVncServer>;
let server: http.Server;
let relay: StreamRelay;
let base: string;
const targets = new Map<string, StreamTarget>();
const activity: string[] = [];

before(async () => {
  vnc = fakeVncServer();
  const port = await vnc.ready;
  relay = new StreamRelay({
    logger: pino({ level: 'silent' }),
    resolve: async (id) => targets.get(id) ?? { ok: false, code: CloseCode.SessionNotFound, reason: `No session with id "${id}"` },
    onActivity: (id) => activity.push(id),
    handshakeTimeoutMs: 2000,
  });
  server = http.createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => relay.handleUpgrade(req, socket, head));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;

  targets.set('live', { ok: true, endpoint: { host: '127.0.0.1', port }, secret: PASSWORD });
  targets.set('wrong-password', { ok: true, endpoint: { host: '127.0.0.1', port }, secret: 'nope' });
  targets.set('starting', { ok: false, code: CloseCode.SessionNotRunning, reason: 'The session is still starting' });
  targets.set('ended', { ok: false, code: CloseCode.SessionEnded, reason: 'The session has ended' });
  targets.set('unreachable', { ok: true, endpoint: { host: '127.0.0.1', port: 1 }, secret: PASSWORD });
});

after(async () => {
  relay.close();
  server.close();
  vnc.server.close();
});

/** Connects as noVNC would: RFB version, security "None", and then the stream is ours. */
async function openViewer(id: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(`${base}/ws/sessions/${id}`, ['binary'], { headers });
  const inbox: Buffer[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (data: Buffer) => {
    inbox.push(data);
    wake?.();
  });
  const next = async () => {
    while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
    return inbox.shift()!;
  };
  await once(ws, 'open');
  assert.equal((await next()).toString(), 'RFB 003.008\n');
  ws.send(Buffer.from('RFB 003.008\n'));
  assert.deepEqual([...(await next())], [1, 1], 'Sortie offers the browser "None" only');
  ws.send(Buffer.from([1]));
  assert.deepEqual([...(await next())], [0, 0, 0, 0], 'SecurityResult OK');
  ws.removeAllListeners('message');
  return ws;
}

async function closeOf(id: string): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(`${base}/ws/sessions/${id}`, ['binary']);
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  return { code, reason: reason.toString() };
}

test('answers the VNC password itself, greets the viewer with "None", then pipes both ways', async () => {
  const ws = await openViewer('live');
  assert.equal(ws.protocol, 'binary');
  const payload = Buffer.from([1, 0, 0, 0]);
  ws.send(payload);
  const [echo] = (await once(ws, 'message')) as [Buffer];
  assert.deepEqual(echo, payload);
  ws.close();
  await once(ws, 'close');
});

test("does not pass Sortie's cookies or credentials to the session", async () => {
  vnc.requests.length = 0;
  const ws = await openViewer('live', { Cookie: 'sortie_access=secret', Authorization: 'Bearer secret' });
  ws.close();
  await once(ws, 'close');
  const seen = vnc.requests[0]!;
  assert.equal(seen.headers.cookie, undefined);
  assert.equal(seen.headers.authorization, undefined);
});

test('carries large messages intact, in order (backpressure, no loss)', async () => {
  const ws = await openViewer('live');
  const frames = 64;
  const received: Buffer[] = [];
  const done = new Promise<void>((resolve) =>
    ws.on('message', (data: Buffer) => {
      received.push(data);
      if (received.length === frames) resolve();
    }),
  );
  for (let i = 0; i < frames; i++) ws.send(Buffer.alloc(256 * 1024, i));
  await done;
  received.forEach((frame, i) => {
    assert.equal(frame.length, 256 * 1024);
    assert.equal(frame[0], i % 256);
    assert.equal(frame[frame.length - 1], i % 256);
  });
  ws.close();
  await once(ws, 'close');
});

test('names why there is no stream with a close code', async () => {
  assert.deepEqual(await closeOf('nope'), { code: CloseCode.SessionNotFound, reason: 'No session with id "nope"' });
  assert.equal((await closeOf('starting')).code, CloseCode.SessionNotRunning);
  assert.equal((await closeOf('ended')).code, CloseCode.SessionEnded);
  assert.equal((await closeOf('unreachable')).code, CloseCode.StreamUnavailable);
});

test('a VNC server that refuses the password gives 4502, not a hang', async () => {
  assert.equal((await closeOf('wrong-password')).code, CloseCode.StreamUnavailable);
});

test('answers 404 to upgrades on other paths and 400 to non-WebSocket upgrades', async () => {
  const { port } = server.address() as AddressInfo;
  const upgrade = async (path: string, headers: Record<string, string>) => {
    const req = http.request({ port, host: '127.0.0.1', path, headers: { Connection: 'Upgrade', ...headers } });
    req.end();
    const [response] = (await once(req, 'response')) as [http.IncomingMessage];
    response.resume();
    return response.statusCode;
  };
  assert.equal(await upgrade('/ws/other', { Upgrade: 'websocket' }), 404);
  assert.equal(await upgrade('/ws/sessions/live', { Upgrade: 'h2c' }), 400);
  assert.equal(await upgrade('/ws/sessions/live', { Upgrade: 'websocket', 'Sec-WebSocket-Key': 'x', 'Sec-WebSocket-Version': '8' }), 400);
});

test('when the session side closes, the browser side closes too', async () => {
  const ws = await openViewer('live');
  const closed = once(ws, 'close');
  for (const client of vnc.server.clients) client.terminate();
  await closed;
});

test('when the browser leaves, the session side is closed', async () => {
  const ws = await openViewer('live');
  const before = vnc.server.clients.size;
  assert.ok(before >= 1);
  ws.terminate();
  const deadline = Date.now() + 2000;
  while (vnc.server.clients.size >= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(vnc.server.clients.size, before - 1);
});

test('closeSession cuts its streams and tracks activity', async () => {
  activity.length = 0;
  const ws = await openViewer('live');
  assert.deepEqual(relay.activeSessionIds(), ['live']);
  const closed = once(ws, 'close');
  relay.closeSession('live');
  await closed;
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(relay.activeSessionIds(), []);
  assert.deepEqual(activity, ['live', 'live'], 'told on open and on close');
});
