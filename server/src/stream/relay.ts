import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { Endpoint } from '../runners/runner.js';
import { CloseCode } from './close-codes.js';

/** What the relay needs to know about a session: where to dial, or why it can't. */
export type StreamTarget =
  | { ok: true; endpoint: Endpoint }
  | { ok: false; code: (typeof CloseCode)[keyof typeof CloseCode]; reason: string };

export interface StreamRelayOptions {
  resolve: (sessionId: string) => Promise<StreamTarget>;
  logger: Logger;
  /** Told when a session's first viewer connects and its last one leaves. */
  onActivity?: (sessionId: string) => void;
}

const PATH = /^\/ws\/sessions\/([A-Za-z0-9-]{1,64})\/?$/;

// Headers that belong to this hop or carry the browser's credentials for Sortie itself;
// the session's websockify has no business seeing them.
const DROPPED_HEADERS = new Set(['host', 'cookie', 'authorization', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'proxy-authorization']);

/**
 * Relays `/ws/sessions/{id}` to the session's websockify. Once the upstream socket is
 * open, the browser's upgrade request is replayed to it and from then on bytes are piped
 * both ways untouched: the WebSocket handshake and frames go end to end, so the relay
 * costs about what a TCP splice costs and never re-frames a message. `pipe` gives
 * backpressure; an error or close on either side destroys both.
 */
export class StreamRelay {
  private readonly streams = new Map<string, Set<Duplex>>();
  // Used only to speak a proper WebSocket close (with a code) when there is no stream.
  private readonly refuser = new WebSocketServer({ noServer: true });

  constructor(private readonly o: StreamRelayOptions) {}

  /** Handles an HTTP upgrade; answers 404 for paths that are not a session stream. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const match = PATH.exec((req.url ?? '').split('?')[0]!);
    if (!match) return httpRefuse(socket, 404, 'Not Found', 'No WebSocket endpoint at this path; session streams are at /ws/sessions/{id}');
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return httpRefuse(socket, 400, 'Bad Request', 'Expected a WebSocket upgrade');
    }
    const sessionId = match[1]!;
    this.o
      .resolve(sessionId)
      .then((target) => {
        if (!target.ok) return this.refuse(req, socket, head, target.code, target.reason);
        this.connect(sessionId, target.endpoint, req, socket, head);
      })
      .catch((err: unknown) => {
        this.o.logger.error({ err, sessionId }, 'stream lookup failed');
        this.refuse(req, socket, head, CloseCode.StreamUnavailable, 'Sortie could not look up the session');
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
    this.refuser.close();
  }

  private connect(sessionId: string, endpoint: Endpoint, req: IncomingMessage, client: Duplex, head: Buffer): void {
    const upstream = net.connect({ host: endpoint.host, port: endpoint.port });
    let opened = false;
    const failBeforeOpen = (err: Error) => {
      if (opened) return;
      this.o.logger.warn({ sessionId, endpoint, err: err.message }, 'session stream unreachable');
      this.refuse(req, client, head, CloseCode.StreamUnavailable, 'The session is running but its stream cannot be reached; try again');
    };
    upstream.once('error', failBeforeOpen);
    client.once('close', () => {
      if (!opened) upstream.destroy();
    });
    upstream.once('connect', () => {
      if (client.destroyed) return upstream.destroy();
      opened = true;
      upstream.off('error', failBeforeOpen);
      upstream.setNoDelay(true);
      if (client instanceof net.Socket) {
        client.setNoDelay(true);
        client.setTimeout(0);
      }
      upstream.write(upgradeRequest(req, endpoint));
      if (head.length > 0) upstream.write(head);
      this.track(sessionId, client, upstream);
      client.pipe(upstream);
      upstream.pipe(client);
    });
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

/** The browser's upgrade request, re-addressed to the session's websockify. */
function upgradeRequest(req: IncomingMessage, endpoint: Endpoint): string {
  const lines = [`GET / HTTP/1.1`, `Host: ${endpoint.host}:${endpoint.port}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    if (!DROPPED_HEADERS.has(name.toLowerCase())) lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function httpRefuse(socket: Duplex, status: number, statusText: string, message: string): void {
  const body = JSON.stringify({ error: status === 404 ? 'not_found' : 'bad_request', message });
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
