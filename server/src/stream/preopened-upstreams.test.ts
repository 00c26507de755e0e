import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { waitFor } from '../../test/support/wait.js';
import { openThroughRelay } from '../../test/support/relay-viewer.js';
import { CloseCode } from './close-codes.js';
import { PreopenedUpstreams } from './preopened-upstreams.js';
import { StreamRelay, type StreamTarget } from './relay.js';
import { vncAuthResponse } from './rfb-handshake.js';
import { LocalSessionFeed } from '../sessions/session-feed.js';
import { StreamHandoff } from './stream-handoff.js';

const PASSWORD = 'p00lPass';
/** 1280x800, 32 bpp, named "desk". */
const SERVER_INIT = Buffer.concat([Buffer.from([5, 0, 3, 32, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]), Buffer.from([0, 0, 0, 4]), Buffer.from('desk')]);

/**
 * Stands in for a pooled session's websockify + Xvnc: RFB 3.8 with the VNC password, then
 * ClientInit/ServerInit, then an echo. Each connection is numbered, and the echo says which
 * connection answered.
 */
function fakeVncServer() {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const connections: Array<{ ws: WebSocket; authenticated: boolean; initialised: boolean }> = [];
  server.on('connection', (ws) => {
    const connection = { ws, authenticated: false, initialised: false };
    const number = connections.push(connection);
    const challenge = randomBytes(16);
    let stage: 'version' | 'type' | 'response' | 'init' | 'echo' = 'version';
    ws.send(Buffer.from('RFB 003.008\n'));
    ws.on('message', (data: Buffer) => {
      if (stage === 'echo') return ws.send(Buffer.concat([Buffer.from(`#${number} `), data]));
      if (stage === 'version') return (stage = 'type'), ws.send(Buffer.from([1, 2]));
      if (stage === 'type') return (stage = 'response'), ws.send(challenge);
      if (stage === 'init') return (stage = 'echo'), (connection.initialised = true), ws.send(SERVER_INIT);
      stage = 'init';
      connection.authenticated = data.equals(vncAuthResponse(challenge, PASSWORD));
      if (connection.authenticated) return ws.send(Buffer.from([0, 0, 0, 0]));
      ws.send(Buffer.from([0, 0, 0, 1, 0, 0, 0, 21, ...Buffer.from('Authentication failed')]));
    });
  });
  const ready = once(server, 'listening').then(() => (server.address() as AddressInfo).port);
  return { server, connections, ready };
}

let vnc: ReturnType<typeof fakeVncServer>;
let preopened: PreopenedUpstreams;
let relay: StreamRelay;
let server: http.Server;
let base: string;
let endpoint: { host: string; port: number };
const claimed = new Set<string>();
/** Sessions whose viewers here watch only (a share's "view"): the relay reads their input. */
const watchOnly = new Set<string>();

before(async () => {
  vnc = fakeVncServer();
  endpoint = { host: '127.0.0.1', port: await vnc.ready };
  const logger = pino({ level: 'silent' });
  preopened = new PreopenedUpstreams({ logger, handshakeTimeoutMs: 2000, maxHandshakeBytes: 4096 });
  relay = new StreamRelay({
    logger,
    // As the session service answers: a session still in the pool is nobody's to watch.
    resolve: async (id): Promise<StreamTarget> =>
      claimed.has(id)
        ? { ok: true, endpoint, secret: PASSWORD, viewOnly: watchOnly.has(id) }
        : { ok: false, code: CloseCode.SessionNotRunning, reason: 'The session is not running yet' },
    preopened,
    handshakeTimeoutMs: 2000,
  });
  server = http.createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => relay.handleUpgrade(req, socket, head));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  relay.close();
  preopened.close();
  server.close();
  vnc.server.close();
});

/** A viewer through the relay: RFB with "None", then one echoed message; answers the echo and the socket. */
async function view(id: string, first: Buffer = Buffer.from('hello')): Promise<{ echo: string; ws: WebSocket }> {
  const { ws, next } = await openThroughRelay(`${base}/ws/sessions/${id}`);
  ws.send(Buffer.from([1])); // ClientInit, shared
  assert.deepEqual(await next(), SERVER_INIT);
  ws.send(first);
  return { echo: (await next()).toString('latin1'), ws };
}

/** Opens a connection ahead for `id` and waits until the stand-in has seen it authenticate. */
async function openAhead(id: string): Promise<number> {
  const before = vnc.connections.length;
  preopened.open(id, endpoint, PASSWORD);
  await waitFor(() => vnc.connections.length === before + 1 && vnc.connections.at(-1)!.initialised, { what: 'the connection opened ahead to authenticate and initialise' });
  return vnc.connections.length;
}

test("a claimed session's first viewer is relayed over the connection opened ahead; the next viewer opens its own", async () => {
  const number = await openAhead('s1');
  claimed.add('s1');
  const first = await view('s1');
  assert.equal(first.echo, `#${number} hello`, 'the stream runs over the connection opened before the claim');
  assert.equal(vnc.connections.length, number, 'websockify saw no new connection for the first viewer');
  const second = await view('s1');
  assert.equal(second.echo, `#${number + 1} hello`);
  first.ws.close();
  second.ws.close();
});

test('a viewer of a session still in the pool is refused, and the connection opened ahead stays unused', async () => {
  const number = await openAhead('s2');
  const ws = new WebSocket(`${base}/ws/sessions/s2`, ['binary']);
  const [code] = (await once(ws, 'close')) as [number];
  assert.equal(code, CloseCode.SessionNotRunning);
  assert.ok(preopened.sessionIds().includes('s2'));
  assert.equal(vnc.connections[number - 1]!.ws.readyState, WebSocket.OPEN);
  claimed.add('s2');
  const viewer = await view('s2');
  assert.equal(viewer.echo, `#${number} hello`, 'once claimed, its first viewer gets it');
  viewer.ws.close();
});

test('ending the session closes the connection opened ahead', async () => {
  const number = await openAhead('s3');
  relay.closeSession('s3');
  await waitFor(() => vnc.connections[number - 1]!.ws.readyState === WebSocket.CLOSED, { what: 'the stand-in to see the connection close' });
  assert.ok(!preopened.sessionIds().includes('s3'));
});

test('a connection opened ahead that broke while waiting is not handed out: the viewer gets a fresh one', async () => {
  const number = await openAhead('s4');
  vnc.connections[number - 1]!.ws.terminate();
  await waitFor(() => !preopened.sessionIds().includes('s4'), { what: 'the broken connection to be forgotten' });
  claimed.add('s4');
  const viewer = await view('s4');
  assert.equal(viewer.echo, `#${number + 1} hello`);
  viewer.ws.close();
});

test('a connection opened ahead with a password the server refuses is not kept', async () => {
  const before = vnc.connections.length;
  preopened.open('s5', endpoint, 'wrongpw1');
  await waitFor(() => vnc.connections.length === before + 1 && !preopened.sessionIds().includes('s5'), { what: 'the refused connection to be forgotten' });
  assert.equal(vnc.connections.at(-1)!.authenticated, false);
});

test('a connection opened for a while only is closed when no viewer took it in time', async () => {
  const before = vnc.connections.length;
  preopened.open('s6', endpoint, PASSWORD, 300);
  await waitFor(() => vnc.connections.length === before + 1 && vnc.connections.at(-1)!.authenticated, { what: 'the connection opened ahead to authenticate' });
  assert.ok(preopened.sessionIds().includes('s6'));
  await waitFor(() => vnc.connections[before]!.ws.readyState === WebSocket.CLOSED, { what: 'the unused connection to be closed', timeoutMs: 3000 });
  assert.ok(!preopened.sessionIds().includes('s6'));
});

test("a draining replica's streams: the others open their sessions' side ahead, and the viewer reconnecting is relayed over it", async () => {
  // Two replicas on one feed: A drains, B (this file's relay and its connections opened ahead) takes over.
  const feed = new LocalSessionFeed();
  const logger = pino({ level: 'silent' });
  const running = new Set(['h1', 'h3']);
  const runningStreams = async (ids: readonly string[]) => ids.filter((id) => running.has(id)).map((id) => ({ id, endpoint, secret: PASSWORD }));
  const aheadOnA = new PreopenedUpstreams({ logger, handshakeTimeoutMs: 2000, maxHandshakeBytes: 4096 });
  const a = new StreamHandoff({ channel: feed, preopened: aheadOnA, runningStreams, logger, leadMs: 300 });
  const b = new StreamHandoff({ channel: feed, preopened, runningStreams, logger, leadMs: 300, keepMs: 5000 });
  a.start();
  b.start();
  try {
    const before = vnc.connections.length;
    const began = performance.now();
    await a.announce(['h1', 'h2']);
    assert.ok(performance.now() - began >= 290, 'the draining replica waits for the others before closing its streams');
    await waitFor(() => vnc.connections.length === before + 1 && vnc.connections.at(-1)!.authenticated, { what: "B's connection to h1" });
    assert.deepEqual(preopened.sessionIds().filter((id) => id.startsWith('h')), ['h1'], 'only running sessions are opened ahead');
    assert.deepEqual(aheadOnA.sessionIds(), [], 'the draining replica prepares for nobody, its own announcement included');
    claimed.add('h1');
    const viewer = await view('h1');
    assert.equal(viewer.echo, `#${before + 1} hello`, 'the reconnecting viewer runs over the connection opened ahead');
    viewer.ws.close();
    // A replica that has drained takes no further streams either.
    await b.announce([]);
    feed.announceMoving(['h3']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(!preopened.sessionIds().includes('h3'));
  } finally {
    a.close();
    b.close();
    aheadOnA.close();
  }
});

test("a view-only viewer over a connection opened ahead: the relay answered its ClientInit, and reads its input from the next message on", { timeout: 10_000 }, async () => {
  const number = await openAhead('s7');
  claimed.add('s7');
  watchOnly.add('s7');
  const keyThenUpdateRequest = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61, 3, 0, 0, 0, 0, 0, 5, 0, 3, 32]);
  const viewer = await view('s7', keyThenUpdateRequest);
  assert.equal(viewer.echo, `#${number} ` + Buffer.from([3, 0, 0, 0, 0, 0, 5, 0, 3, 32]).toString('latin1'), 'the key is dropped, the update request passes');
  viewer.ws.close();
});

test('a replica holds at most maxOpen connections opened ahead, whatever a notice names', async () => {
  const feed = new LocalSessionFeed();
  const logger = pino({ level: 'silent' });
  const ids = ['b1', 'b2', 'b3'];
  const runningStreams = async (asked: readonly string[]) => asked.map((id) => ({ id, endpoint, secret: PASSWORD }));
  const held = preopened.sessionIds().length;
  const b = new StreamHandoff({ channel: feed, preopened, runningStreams, logger, maxOpen: held + 1, keepMs: 5000 });
  b.start();
  try {
    const before = vnc.connections.length;
    feed.announceMoving(ids);
    await waitFor(() => vnc.connections.length === before + 1 && vnc.connections.at(-1)!.initialised, { what: 'the one connection there is room for' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(vnc.connections.length, before + 1, 'no more than maxOpen');
    assert.deepEqual(preopened.sessionIds().filter((id) => ids.includes(id)), ['b1']);
  } finally {
    b.close();
    for (const id of ids) preopened.drop(id);
  }
});
