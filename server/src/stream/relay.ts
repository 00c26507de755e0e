import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { Endpoint } from '../runners/runner.js';
import { CloseCode, type CloseCodeValue } from './close-codes.js';
import { authenticateToServer, greetBrowser } from './rfb-handshake.js';
import { acceptKey, openUpstream } from './upstream.js';
import { encodeClose, encodeFrame, FrameReader } from './ws-frames.js';

/** What the relay needs to know about a session: where to dial and its VNC password, or why not. */
export type StreamTarget =
  | { ok: true; endpoint: Endpoint; secret?: string }
  | { ok: false; code: CloseCodeValue; reason: string };

export interface StreamRelayOptions {
  /** Decides from the upgrade request (its cookies, its Origin) whether and where to relay. */
  resolve: (sessionId: string, req: IncomingMessage) => Promise<StreamTarget>;
  logger: Logger;
  /** Told when a viewer connects or leaves. */
  onActivity?: (sessionId: string) => void;
  /** How long the upstream connection and both handshakes may take. */
  handshakeTimeoutMs?: number;
}

const PATH = /^\/ws\/sessions\/([A-Za-z0-9-]{1,64})\/?$/;

/**
 * Relays `/ws/sessions/{id}` to the session's websockify. Sortie opens its own WebSocket to
 * websockify and answers the VNC server's password challenge with the session's secret,
 * which never reaches the browser; it greets the browser with "no authentication". With both
 * sides standing just before ClientInit, it pipes bytes both ways untouched: the browser's
 * (masked) frames are valid client frames for websockify and websockify's are valid server
 * frames for the browser, so nothing is re-framed and the relay costs about what a TCP
 * splice costs. `pipe` gives backpressure; an error or close on either side ends both.
 */
export class StreamRelay {
  private readonly streams = new Map<string, Set<Duplex>>();
  /** Browser sockets still in their handshake, so close() can end them too. */
  private readonly pending = new Set<Duplex>();
  // Speaks a proper WebSocket close (with a code) when there is no stream to give.
  private readonly refuser = new WebSocketServer({ noServer: true });
  private readonly timeoutMs: number;

  constructor(private readonly o: StreamRelayOptions) {
    this.timeoutMs = o.handshakeTimeoutMs ?? 10_000;
  }

  /** Handles an HTTP upgrade; answers 404 for paths that are not a session stream. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const match = PATH.exec((req.url ?? '').split('?')[0]!);
    if (!match) return httpRefuse(socket, 404, 'No WebSocket endpoint at this path; session streams are at /ws/sessions/{id}');
    const problem = upgradeProblem(req);
    if (problem) return httpRefuse(socket, 400, problem);
    const sessionId = match[1]!;
    this.pending.add(socket);
    socket.once('close', () => this.pending.delete(socket));
    this.o
      .resolve(sessionId, req)
      .then((target) => {
        if (!target.ok) return this.refuse(req, socket, head, target.code, target.reason);
        return this.relay(sessionId, target, req, socket, head);
      })
      .catch((err: unknown) => {
        this.o.logger.error({ err, sessionId }, 'stream setup failed');
        this.refuse(req, socket, head, CloseCode.StreamUnavailable, 'Sortie could not open the stream');
      });
  }

  /** Sessions with at least one open stream right now. */
  activeSessionIds(): string[] {
    return [...this.streams.keys()];
  }

  /** Cuts every stream of a session, e.g. when it ends. */
  closeSession(sessionId: string): void {
    for (const socket of this.streams.get(sessionId) ?? []) socket.destroy();
  }

  close(): void {
    for (const id of this.activeSessionIds()) this.closeSession(id);
    for (const socket of this.pending) socket.destroy();
    this.refuser.close();
  }

  private async relay(sessionId: string, target: { endpoint: Endpoint; secret?: string }, req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const clientGone = new AbortController();
    client.once('close', () => clientGone.abort());
    const signal = AbortSignal.any([timeout, clientGone.signal]);

    // 1. The session's side: WebSocket upgrade, then the VNC password.
    let upstream: net.Socket;
    let upstreamReader: FrameReader;
    let accepted = false;
    // A timeout (or the viewer leaving) mid-handshake ends the session's side, then the
    // browser's once it has been accepted; the waiting readers then fail.
    const abortHandshake = () => {
      upstream.destroy();
      if (accepted) client.destroy();
    };
    try {
      const opened = await openUpstream(target.endpoint, signal);
      upstream = opened.socket;
      upstreamReader = new FrameReader(upstream, opened.rest);
      signal.addEventListener('abort', abortHandshake, { once: true });
      await authenticateToServer(upstreamReader, (p) => upstream.write(encodeFrame(p, true)), target.secret);
    } catch (err) {
      this.o.logger.warn({ sessionId, endpoint: target.endpoint, err: (err as Error).message }, 'session stream unreachable');
      return this.refuse(req, client, head, CloseCode.StreamUnavailable, 'The session is running but its desktop cannot be reached; try again');
    }
    if (client.destroyed) return void upstream.destroy();

    // 2. The browser's side: accept its upgrade and lead it to ClientInit.
    client.write(acceptResponse(req));
    accepted = true;
    const clientReader = new FrameReader(client, head);
    let securityResult: Buffer | undefined;
    try {
      securityResult = await greetBrowser(clientReader, (p) => client.write(encodeFrame(p, false)));
      if (signal.aborted) throw new Error('timed out');
    } catch (err) {
      this.o.logger.warn({ sessionId, err: (err as Error).message }, 'viewer handshake failed');
      upstream.destroy();
      client.end(encodeClose(1002, 'RFB handshake failed'));
      return;
    } finally {
      signal.removeEventListener('abort', abortHandshake);
    }

    // 3. From here on: bytes, both ways, untouched. Hand over whatever arrived early first.
    const early = { fromClient: clientReader.detach(), fromUpstream: upstreamReader.detach() };
    if (early.fromClient.payload.length > 0) upstream.write(encodeFrame(early.fromClient.payload, true));
    if (early.fromClient.raw.length > 0) upstream.write(early.fromClient.raw);
    if (early.fromUpstream.payload.length > 0) client.write(encodeFrame(early.fromUpstream.payload, false));
    if (early.fromUpstream.raw.length > 0) client.write(early.fromUpstream.raw);
    if (client instanceof net.Socket) {
      client.setNoDelay(true);
      client.setTimeout(0);
    }
    this.pending.delete(client);
    this.track(sessionId, client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    // The VNC server waits for ClientInit, so nothing of its own can interleave with this.
    if (securityResult) client.write(encodeFrame(securityResult, false));
  }

  private track(sessionId: string, client: Duplex, upstream: net.Socket): void {
    let set = this.streams.get(sessionId);
    if (!set) this.streams.set(sessionId, (set = new Set()));
    set.add(client);
    this.o.onActivity?.(sessionId);
    let done = false;
    const teardown = () => {
      if (done) return;
      done = true;
      client.destroy();
      upstream.destroy();
      set.delete(client);
      if (set.size === 0 && this.streams.get(sessionId) === set) this.streams.delete(sessionId);
      this.o.onActivity?.(sessionId);
    };
    for (const side of [client, upstream]) {
      side.on('error', teardown);
      side.on('close', teardown);
      // A half-closed peer means the conversation is over; don't leave the other half open.
      side.on('end', teardown);
    }
  }

  private refuse(req: IncomingMessage, socket: Duplex, head: Buffer, code: number, reason: string): void {
    if (socket.destroyed) return;
    this.refuser.handleUpgrade(req, socket, head, (ws) => ws.close(code, reason));
  }
}

/** Why an upgrade request is not a WebSocket handshake the relay can complete, if it is not. */
function upgradeProblem(req: IncomingMessage): string | undefined {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return 'Expected a WebSocket upgrade';
  if (!req.headers['sec-websocket-key'] || req.headers['sec-websocket-version'] !== '13') return 'Expected a WebSocket version 13 handshake';
  const offered = protocolsOf(req);
  if (offered.length > 0 && !offered.includes('binary')) return 'The stream speaks the "binary" WebSocket subprotocol only';
  return undefined;
}

function protocolsOf(req: IncomingMessage): string[] {
  return (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
}

/** The 101 answer to the browser; no extensions, so frames stay as websockify sends them. */
function acceptResponse(req: IncomingMessage): string {
  const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptKey(req.headers['sec-websocket-key']!)}`];
  if (protocolsOf(req).includes('binary')) lines.push('Sec-WebSocket-Protocol: binary');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function httpRefuse(socket: Duplex, status: 400 | 404, message: string): void {
  const body = JSON.stringify({ error: status === 404 ? 'not_found' : 'bad_request', message });
  socket.end(
    `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
