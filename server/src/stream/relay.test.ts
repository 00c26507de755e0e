import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { CloseCode } from './close-codes.js';
import { StreamRelay, type StreamTarget } from './relay.js';

// Stands in for a session's websockify: echoes every message and remembers what it saw.
let upstream: WebSocketServer;
let upstreamPort: number;
const upstreamRequests: http.IncomingMessage[] = [];

let server: http.Server;
let relay: StreamRelay;
let base: string;
const targets = new Map<string, StreamTarget>();
const activity: string[] = [];

before(async () => {
  upstream = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(upstream, 'listening');
  upstreamPort = (upstream.address() as AddressInfo).port;
  upstream.on('connection', (ws, req) => {
    upstreamRequests.push(req);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });

  relay = new StreamRelay({
    logger: pino({ level: 'silent' }),
    resolve: async (id) => targets.get(id) ?? { ok: false, code: CloseCode.SessionNotFound, reason: `No session with id "${id}"` },
    onActivity: (id) => activity.push(id),
  });
  server = http.createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => relay.handleUpgrade(req, socket, head));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;

  targets.set('live', { ok: true, endpoint: { host: '127.0.0.1', port: upstreamPort } });
  targets.set('starting', { ok: false, code: CloseCode.SessionNotRunning, reason: 'The session is still starting' });
  targets.set('ended', { ok: false, code: CloseCode.SessionEnded, reason: 'The session has ended' });
  targets.set('unreachable', { ok: true, endpoint: { host: '127.0.0.1', port: 1 } });
});

after(async () => {
  relay.close();
  server.close();
  upstream.close();
});

async function open(id: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(`${base}/ws/sessions/${id}`, ['binary'], { headers });
  await once(ws, 'open');
  return ws;
}

async function closeOf(id: string): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(`${base}/ws/sessions/${id}`);
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  return { code, reason: reason.toString() };
}

test('pipes messages both ways, end to end, with the negotiated subprotocol', async () => {
  const ws = await open('live');
  assert.equal(ws.protocol, 'binary');
  const payload = Buffer.from('RFB 003.008\n');
  ws.send(payload);
  const [echo] = (await once(ws, 'message')) as [Buffer];
  assert.deepEqual(echo, payload);
  ws.close();
  await once(ws, 'close');
});

test("does not pass Sortie's cookies or credentials to the session", async () => {
  upstreamRequests.length = 0;
  const ws = await open('live', { Cookie: 'sortie_token=secret', Authorization: 'Bearer secret' });
  ws.close();
  await once(ws, 'close');
  const seen = upstreamRequests[0]!;
  assert.equal(seen.headers.cookie, undefined);
  assert.equal(seen.headers.authorization, undefined);
  assert.equal(seen.headers.host, `127.0.0.1:${upstreamPort}`);
});

test('carries large messages intact, in order (backpressure, no loss)', async () => {
  const ws = await open('live');
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

test('answers 404 to upgrades on other paths and 400 to non-WebSocket upgrades', async () => {
  const { port } = server.address() as AddressInfo;
  const upgrade = async (path: string, protocol: string) => {
    const req = http.request({ port, host: '127.0.0.1', path, headers: { Connection: 'Upgrade', Upgrade: protocol } });
    req.end();
    const [response] = (await once(req, 'response')) as [http.IncomingMessage];
    response.resume();
    return response.statusCode;
  };
  assert.equal(await upgrade('/ws/other', 'websocket'), 404);
  assert.equal(await upgrade('/ws/sessions/live', 'h2c'), 400);
});

test('when the session side closes, the browser side closes too', async () => {
  const ws = await open('live');
  const closed = once(ws, 'close');
  for (const client of upstream.clients) client.terminate();
  const [code] = (await closed) as [number];
  assert.equal(code, 1006);
});

test('when the browser leaves, the session side is closed', async () => {
  const ws = await open('live');
  await new Promise((r) => setTimeout(r, 50));
  const before = upstream.clients.size;
  assert.ok(before >= 1);
  ws.terminate();
  const deadline = Date.now() + 2000;
  while (upstream.clients.size >= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(upstream.clients.size, before - 1);
});

test('closeSession cuts its streams and tracks activity', async () => {
  activity.length = 0;
  const ws = await open('live');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(relay.activeSessionIds(), ['live']);
  const closed = once(ws, 'close');
  relay.closeSession('live');
  await closed;
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(relay.activeSessionIds(), []);
  assert.deepEqual(activity, ['live', 'live'], 'told on open and on close');
});
