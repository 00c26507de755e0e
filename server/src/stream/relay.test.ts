import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { openThroughRelay } from '../../test/support/relay-viewer.js';
import { CloseCode } from './close-codes.js';
import { StreamRelay, type StreamRelayOptions, type StreamTarget } from './relay.js';
import { closeReason } from './ws-frames.js';
import { vncAuthResponse } from './rfb-handshake.js';
import { closeFrameIn } from '../../test/support/close-frame.js';

const PASSWORD = 'k3y-9zQa';

/**
 * Stands in for a session's websockify + x11vnc: an RFB 3.8 server that demands the VNC
 * password, then echoes every message. Remembers the upgrade requests it saw.
 */
function fakeVncServer(): { server: WebSocketServer; requests: http.IncomingMessage[]; pongs: () => number; ready: Promise<number> } {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const requests: http.IncomingMessage[] = [];
  let pongs = 0;
  server.on('connection', (ws, req) => {
    requests.push(req);
    ws.on('pong', () => pongs++);
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
  return { server, requests, pongs: () => pongs, ready };
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
async function openViewer(id: string, headers: Record<string, string> = {}, at = base): Promise<WebSocket> {
  const { ws, release } = await openThroughRelay(`${at}/ws/sessions/${id}`, headers);
  release();
  return ws;
}

async function closeOf(id: string, at = base): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(`${at}/ws/sessions/${id}`, ['binary']);
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

/** Another relay in front of the same fake session, with its own limits. */
async function relayWith(options: Partial<StreamRelayOptions>): Promise<{ base: string; relay: StreamRelay; dispose: () => void }> {
  const port = await vnc.ready;
  const own = new StreamRelay({
    logger: pino({ level: 'silent' }),
    resolve: async () => ({ ok: true, endpoint: { host: '127.0.0.1', port }, secret: PASSWORD }),
    handshakeTimeoutMs: 2000,
    ...options,
  });
  const srv = http.createServer((_req, res) => res.end());
  srv.on('upgrade', (req, socket, head) => own.handleUpgrade(req, socket, head));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    base: `ws://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    relay: own,
    dispose: () => {
      own.close();
      srv.close();
    },
  };
}

test('an endless frame in the viewer handshake closes the connection with 4413, keeping nothing of it', async () => {
  const { port } = server.address() as AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    'GET /ws/sessions/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = once(socket, 'close');
  socket.on('error', () => {});
  // A masked binary frame announcing 2^40 bytes, then as much of it as the relay will take.
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(2n ** 40n, 2);
  socket.write(header);
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024);
  let open = true;
  void closed.then(() => (open = false));
  while (open && sent < 64 * 1024 * 1024) {
    sent += chunk.length;
    if (!socket.write(chunk)) await Promise.race([once(socket, 'drain'), closed]);
  }
  await closed;
  const received = Buffer.concat(chunks);
  const body = received.subarray(received.indexOf('\r\n\r\n') + 4);
  assert.match(received.toString('latin1', 0, 12), /^HTTP\/1\.1 101/);
  assert.deepEqual(closeFrameIn(body), { code: CloseCode.HandshakeTooLarge, reason: 'The viewer sent more than the 4096 bytes the VNC handshake needs' });
  assert.ok(sent < 64 * 1024 * 1024, `the relay closed the connection before 64 MiB were sent (${sent} bytes sent)`);
});

test('a session has at most maxViewersPerSession viewers; the next is refused with 4429 until one leaves', async () => {
  const capped = await relayWith({ maxViewersPerSession: 2 });
  try {
    const first = await openViewer('live', {}, capped.base);
    const second = await openViewer('live', {}, capped.base);
    assert.deepEqual(await closeOf('live', capped.base), { code: CloseCode.TooManyViewers, reason: 'This session already has 2 viewers, the most allowed; close one and try again' });
    first.close();
    await once(first, 'close');
    const third = await openViewer('live', {}, capped.base);
    third.terminate();
    second.terminate();
  } finally {
    capped.dispose();
  }
});

/**
 * A viewer that stops reading while the session keeps sending (the fake server echoes what
 * it is sent, so sending is how the test makes the session talk). Resolves with the close
 * the viewer finds once it reads again, and how many bytes of intact messages came before it.
 */
async function stopReading(at: string, messages: number): Promise<{ code: number; reason: string; received: number }> {
  const ws = await openViewer('live', {}, at);
  ws.pause();
  let received = 0;
  ws.on('message', (data: Buffer) => (received += data.length));
  const closed = once(ws, 'close') as Promise<[number, Buffer]>;
  for (let i = 0; i < messages && ws.readyState === WebSocket.OPEN; i++) {
    ws.send(Buffer.alloc(256 * 1024, i));
    // Let the relay act between messages, as a real session's stream would.
    if (i % 8 === 7) await new Promise((r) => setTimeout(r, 5));
  }
  // Give the relay time to decide, then read again to find out what it said.
  await new Promise((r) => setTimeout(r, 800));
  ws.resume();
  const giveUp = setTimeout(() => ws.terminate(), 10_000); // a relay that never cuts: 1006
  const [code, reason] = await closed;
  clearTimeout(giveUp);
  return { code, reason: reason.toString(), received };
}

test('a viewer with more than maxPendingBytes waiting is cut with 4408 after a whole frame', async () => {
  const strict = await relayWith({ maxPendingBytes: 1024 * 1024, stallTimeoutMs: 60_000, closeGraceMs: 10_000 });
  try {
    const end = await stopReading(strict.base, 400);
    assert.equal(end.code, CloseCode.ViewerTooSlow);
    assert.equal(end.reason, 'The viewer fell more than 1 MiB behind the desktop stream and was disconnected');
    assert.ok(end.received > 0 && end.received % (256 * 1024) === 0, `only whole messages arrived before the close (${end.received} bytes)`);
    assert.deepEqual(strict.relay.activeSessionIds(), []);
  } finally {
    strict.dispose();
  }
});

test('a viewer that takes nothing for stallTimeoutMs is cut with 4408', async () => {
  const strict = await relayWith({ maxPendingBytes: 256 * 1024 * 1024, stallTimeoutMs: 200, closeGraceMs: 10_000 });
  try {
    const end = await stopReading(strict.base, 160);
    assert.equal(end.code, CloseCode.ViewerTooSlow);
    assert.match(end.reason, /^The viewer took none of the desktop stream for \d+ s and was disconnected$/);
  } finally {
    strict.dispose();
  }
});

test('a viewer that keeps reading is never cut, however much flows', async () => {
  const strict = await relayWith({ maxPendingBytes: 1024 * 1024, stallTimeoutMs: 200 });
  try {
    const ws = await openViewer('live', {}, strict.base);
    let received = 0;
    const all = 200 * 256 * 1024;
    const done = new Promise<void>((resolve) => ws.on('message', (d: Buffer) => (received += d.length) === all && resolve()));
    let closedWith: number | undefined;
    ws.on('close', (code) => (closedWith = code));
    for (let i = 0; i < 200; i++) ws.send(Buffer.alloc(256 * 1024, i));
    await done;
    assert.equal(closedWith, undefined);
    ws.close();
    await once(ws, 'close');
  } finally {
    strict.dispose();
  }
});

test('a silent stream is pinged every pingIntervalMs; the pongs pass to websockify and the stream goes on', async () => {
  const own = await relayWith({ pingIntervalMs: 200 });
  try {
    const ws = await openViewer('live', {}, own.base);
    let pings = 0;
    ws.on('ping', () => pings++);
    const pongsBefore = vnc.pongs();
    await new Promise((r) => setTimeout(r, 1100));
    assert.ok(pings >= 3, `${pings} pings in 1.1 s of silence`);
    // The browser answers each ping with a pong; websockify sees it and ignores it.
    assert.ok(vnc.pongs() - pongsBefore >= 3, `${vnc.pongs() - pongsBefore} pongs reached the VNC side`);
    const payload = Buffer.from([4, 1, 0, 0, 0, 0, 0, 65]);
    ws.send(payload);
    const [echo] = (await once(ws, 'message')) as [Buffer];
    assert.deepEqual(echo, payload, 'the stream is intact after the pings');
    ws.close();
    await once(ws, 'close');
  } finally {
    own.dispose();
  }
});

test('a stream that is busy is not pinged', async () => {
  const own = await relayWith({ pingIntervalMs: 300 });
  try {
    const ws = await openViewer('live', {}, own.base);
    let pings = 0;
    ws.on('ping', () => pings++);
    for (let i = 0; i < 20; i++) {
      ws.send(Buffer.from([i]));
      await once(ws, 'message');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(pings, 0, 'desktop bytes every 50 ms leave nothing to keep alive');
    ws.close();
    await once(ws, 'close');
  } finally {
    own.dispose();
  }
});

test('a refusal whose reason is too long for a close frame still closes with its code, cut', async () => {
  const long = `The session cannot be opened because ${'of a very long explanation '.repeat(10)}`;
  const own = await relayWith({ resolve: async () => ({ ok: false, code: CloseCode.Forbidden, reason: long }) });
  try {
    const { code, reason } = await closeOf('any', own.base);
    assert.equal(code, CloseCode.Forbidden);
    assert.ok(long.startsWith(reason.slice(0, -1)) && reason.endsWith('…'), reason);
    // And the relay still serves: a crash here used to end the whole process.
    assert.equal((await closeOf('again', own.base)).code, CloseCode.Forbidden);
  } finally {
    own.dispose();
  }
});

test('a close reason longer than a close frame holds is cut, not thrown', () => {
  const long = 'é'.repeat(200);
  const cut = closeReason(long);
  assert.ok(Buffer.byteLength(cut) <= 123, `${Buffer.byteLength(cut)} bytes`);
  assert.ok(cut.endsWith('…'));
  assert.equal(closeReason('short'), 'short');
});
