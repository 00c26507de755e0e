import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { Principal } from '../auth/principal.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Endpoint } from '../runners/runner.js';
import { CloseCode, type CloseCodeValue } from './close-codes.js';
import { authenticateToServer, greetBrowser, readClientInit } from './rfb-handshake.js';
import type { ReusedReads } from './reused-reads.js';
import { acceptKey, openUpstream } from './upstream.js';
import type { PreopenedUpstreams } from './preopened-upstreams.js';
import { ViewerStream } from './viewer-stream.js';
import { ViewOnlyInbound } from './view-only-filter.js';
import type { SignedInStream } from './stream-sign-ins.js';
import { closeReason, DEFAULT_HANDSHAKE_LIMIT, encodeClose, encodeFrame, FrameReader, FrameTooLargeError } from './ws-frames.js';

/** What the relay needs to know about a session: where to dial and its VNC password, or why not. */
export type StreamTarget =
  | {
      ok: true;
      endpoint: Endpoint;
      secret?: string;
      /** Who is watching, for the audit log. */
      viewer?: Principal;
      /** The viewer's input is dropped by the relay (see ViewOnlyInbound); its stream is not piped. */
      viewOnly?: boolean;
      /** The viewer sees someone else's session because they are an admin, so must stay one (see StreamSignIns). */
      asAdmin?: boolean;
      /** Told when the stream starts, with a way to close it; what it answers is called when the stream ends. */
      onOpen?: (close: (code: CloseCodeValue, reason: string) => void) => () => void;
    }
  | { ok: false; code: CloseCodeValue; reason: string };

export interface StreamRelayOptions {
  /** Decides from the upgrade request (its cookies, its Origin) whether and where to relay. */
  resolve: (sessionId: string, req: IncomingMessage) => Promise<StreamTarget>;
  logger: Logger;
  /** Told when a viewer connects or leaves. */
  onActivity?: (sessionId: string) => void;
  /** Where stream opens and closes are recorded, with the viewer and its address. */
  audit?: AuditRecorder;
  /** The client address of an upgrade request, decided as for the API (SORTIE_TRUSTED_PROXIES). */
  addressOf?: (req: IncomingMessage) => string;
  /** Counts open streams, their bytes, failed handshakes and refusals. */
  metrics?: Pick<Metrics, 'streamOpened' | 'streamClosed' | 'handshakeFailed' | 'streamRefused'>;
  /** How long the upstream connection and both handshakes may take. */
  handshakeTimeoutMs?: number;
  /**
   * Most bytes either side may send during the VNC handshake, per frame and in total unread;
   * more closes the connection (the browser's with 4413). The handshake needs well under 1 KiB.
   */
  maxHandshakeBytes?: number;
  /** Viewers one session may have at once (SORTIE_MAX_VIEWERS_PER_SESSION); one more is refused with 4429. */
  maxViewersPerSession?: number;
  /** Bytes of the desktop stream that may wait in Sortie for one viewer; beyond, it is cut with 4408. */
  maxPendingBytes?: number;
  /** How long a viewer may have bytes waiting and read none of them before it is cut with 4408. */
  stallTimeoutMs?: number;
  /** How long a cut viewer has to read the close frame before its socket is dropped. */
  closeGraceMs?: number;
  /** How long a stream may be silent before the viewer is pinged (SORTIE_STREAM_PING_INTERVAL). */
  pingIntervalMs?: number;
  /** Asked as each stream starts (its ServerInit is next) whether to record it; given its desktop bytes and its end if so. */
  recorder?: { open(sessionId: string, viewer: Principal | undefined): { data(chunk: Buffer): void; end(): void } | undefined };
  /** Connections opened ahead (a pooled session's, a handoff's); a session's next viewer takes its one. */
  preopened?: PreopenedUpstreams;
}

export const STREAM_DEFAULTS = {
  handshakeTimeoutMs: 10_000,
  maxHandshakeBytes: DEFAULT_HANDSHAKE_LIMIT,
  maxViewersPerSession: 5,
  // A full-screen update of a 4K desktop in a compressing encoding fits many times over;
  // a viewer this far behind is not watching.
  maxPendingBytes: 16 * 1024 * 1024,
  // Long enough for a laggy mobile link, short enough that a vanished viewer is soon let go.
  stallTimeoutMs: 30_000,
  closeGraceMs: 10_000,
  // Under the 60 s that proxies such as nginx and many load balancers allow a silent
  // connection, and under the 30 s of the stricter ones.
  pingIntervalMs: 25_000,
} as const;

const DRAINING_REASON = 'This Sortie is shutting down; connect again to reach another';
const RECONNECT_REASON = 'Sortie is restarting; reconnect now';

const PATH = /^\/ws\/sessions\/([A-Za-z0-9-]{1,64})\/?$/;

/**
 * Relays `/ws/sessions/{id}` to the session's websockify. Sortie opens its own WebSocket to
 * websockify and answers the VNC server's password challenge with the session's secret,
 * which never reaches the browser; it greets the browser with "no authentication". With both
 * sides standing just before ClientInit, it relays bytes both ways untouched: the browser's
 * (masked) frames are valid client frames for websockify and websockify's are valid server
 * frames for the browser, so nothing is re-framed and the relay costs about what a TCP
 * splice costs (see ViewerStream for how each direction is bounded). An error or close on
 * either side ends both.
 *
 * Every buffer on the way is bounded: the upgrade request by Node's header limit, the bytes
 * of each handshake by `maxHandshakeBytes`, a refused socket by the refuser's `maxPayload`,
 * and a running stream by `maxPendingBytes` per viewer and `maxViewersPerSession`.
 */
export class StreamRelay {
  private readonly streams = new Map<string, Set<ViewerStream>>();
  /** Who watches each open stream, and how to close it with a reason the audit log keeps. */
  private readonly watchers = new WeakMap<ViewerStream, SignedInStream>();
  /** Browser sockets still in their handshake, so close() can end them too. */
  private readonly pending = new Set<Duplex>();
  /** Sockets already answered with a close, so nothing answers them twice. */
  private readonly refused = new WeakSet<Duplex>();
  /** Every viewer holding one of a session's places, from the moment it was let in until it leaves. */
  private readonly viewers = new Map<string, Set<Duplex>>();
  // Speaks a proper WebSocket close (with a code) when there is no stream to give. It reads
  // the refused browser's frames until the close handshake ends, so those are kept small too.
  private readonly refuser = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly limits: Required<Omit<StreamRelayOptions, 'resolve' | 'logger' | 'onActivity' | 'metrics' | 'audit' | 'addressOf' | 'recorder' | 'preopened'>>;
  private sweeper: NodeJS.Timeout | undefined;
  /** Set by drain(): Sortie is shutting down. */
  private draining = false;

  constructor(private readonly o: StreamRelayOptions) {
    const pick = <K extends keyof typeof STREAM_DEFAULTS>(key: K): number => o[key] ?? STREAM_DEFAULTS[key];
    this.limits = {
      handshakeTimeoutMs: pick('handshakeTimeoutMs'),
      maxHandshakeBytes: pick('maxHandshakeBytes'),
      maxViewersPerSession: pick('maxViewersPerSession'),
      maxPendingBytes: pick('maxPendingBytes'),
      stallTimeoutMs: pick('stallTimeoutMs'),
      closeGraceMs: pick('closeGraceMs'),
      pingIntervalMs: pick('pingIntervalMs'),
    };
  }

  /** Handles an HTTP upgrade; answers 404 for paths that are not a session stream. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const match = PATH.exec((req.url ?? '').split('?')[0]!);
    if (!match) return httpRefuse(socket, 404, 'No WebSocket endpoint at this path; session streams are at /ws/sessions/{id}');
    const problem = upgradeProblem(req);
    if (problem) return httpRefuse(socket, 400, problem);
    const sessionId = match[1]!;
    if (this.draining) return this.refuse(req, socket, head, CloseCode.Draining, DRAINING_REASON);
    const began = performance.now();
    this.pending.add(socket);
    socket.once('close', () => this.pending.delete(socket));
    this.o
      .resolve(sessionId, req)
      .then((target) => {
        if (!target.ok) return this.refuse(req, socket, head, target.code, target.reason);
        if (this.draining) return this.refuse(req, socket, head, CloseCode.Draining, DRAINING_REASON);
        if (!this.admit(sessionId, socket)) {
          const max = this.limits.maxViewersPerSession;
          return this.refuse(req, socket, head, CloseCode.TooManyViewers, `This session already has ${max} viewer${max === 1 ? '' : 's'}, the most allowed; close one and try again`);
        }
        return this.relay(sessionId, target, req, socket, head, began);
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

  /** Every open stream with its viewer, for the sign-in check (StreamSignIns). */
  openStreams(): SignedInStream[] {
    const all: SignedInStream[] = [];
    for (const streams of this.streams.values()) for (const s of streams) all.push(this.watchers.get(s)!);
    return all;
  }

  /** Cuts every stream of a session, e.g. when it ends, including viewers still in their handshake. */
  closeSession(sessionId: string): void {
    this.o.preopened?.drop(sessionId);
    for (const stream of this.streams.get(sessionId) ?? []) stream.destroy();
    for (const socket of this.viewers.get(sessionId) ?? []) socket.destroy();
  }

  /**
   * Sortie is shutting down: new streams are refused with 4503 (connecting again reaches
   * another replica) and open ones are closed with 4307 after the frame in flight, which the
   * viewer takes as "reconnect at once". Sessions are untouched. Resolves once every stream
   * is gone, or after `graceMs`. Open streams go on flowing until `ready` (a handoff letting
   * other replicas prepare) settles.
   */
  async drain(graceMs: number, ready?: Promise<void>): Promise<void> {
    this.draining = true;
    await ready?.catch(() => undefined);
    for (const streams of this.streams.values()) for (const s of streams) s.close(CloseCode.ReconnectNow, RECONNECT_REASON);
    const deadline = Date.now() + graceMs;
    while (this.streams.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  close(): void {
    for (const id of this.activeSessionIds()) this.closeSession(id);
    for (const socket of this.pending) socket.destroy();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.refuser.close();
  }

  /** Takes one of the session's viewer places for `socket` until it closes, if one is free. */
  private admit(sessionId: string, socket: Duplex): boolean {
    if (socket.destroyed) return true; // nothing to hold; relay() notices it is gone
    let set = this.viewers.get(sessionId);
    if (!set) this.viewers.set(sessionId, (set = new Set()));
    if (set.size >= this.limits.maxViewersPerSession) return false;
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0 && this.viewers.get(sessionId) === set) this.viewers.delete(sessionId);
    });
    return true;
  }

  private async relay(sessionId: string, target: Extract<StreamTarget, { ok: true }>, req: IncomingMessage, client: Duplex, head: Buffer, began: number): Promise<void> {
    // What each step of the opening took, in ms since the upgrade request: a viewer waits for all of it.
    const took: Record<string, number> = { resolved: Math.round(performance.now() - began) };
    const mark = (step: string) => (took[step] = Math.round(performance.now() - began));
    const timeout = AbortSignal.timeout(this.limits.handshakeTimeoutMs);
    const clientGone = new AbortController();
    client.once('close', () => clientGone.abort());
    const signal = AbortSignal.any([timeout, clientGone.signal]);

    // 1. The session's side: WebSocket upgrade, then the VNC password.
    let upstream: net.Socket;
    let reads: ReusedReads;
    let upstreamReader: FrameReader;
    /** The desktop's ServerInit, when the session's side was opened ahead that far. */
    let serverInit: Buffer | undefined;
    let accepted = false;
    // A timeout (or the viewer leaving) mid-handshake ends the session's side, then the
    // browser's once it has been accepted; the waiting readers then fail.
    const abortHandshake = () => {
      upstream.destroy();
      if (accepted) client.destroy();
    };
    try {
      // A claimed pooled session's first viewer, or one moved off a draining replica, finds this side opened ahead.
      const ahead = await this.o.preopened?.take(sessionId, target.endpoint);
      const opened = ahead ? { ...ahead, rest: Buffer.alloc(0) } : await openUpstream(target.endpoint, signal);
      upstream = opened.socket;
      reads = opened.reads;
      upstreamReader = ahead?.reader ?? new FrameReader(upstream, opened.rest, this.limits.maxHandshakeBytes);
      serverInit = ahead?.serverInit;
      mark('upstreamOpen');
      signal.addEventListener('abort', abortHandshake, { once: true });
      if (!ahead) await authenticateToServer(upstreamReader, (p) => upstream.write(encodeFrame(p, true)), target.secret);
    } catch (err) {
      this.o.logger.warn({ sessionId, endpoint: target.endpoint, err: (err as Error).message }, 'session stream unreachable');
      this.o.metrics?.handshakeFailed('session');
      return this.refuse(req, client, head, CloseCode.StreamUnavailable, 'The session is running but its desktop cannot be reached; try again');
    }
    mark('upstreamAuthenticated');
    if (client.destroyed) return void upstream.destroy();

    // 2. The browser's side: accept its upgrade and lead it to ClientInit.
    client.write(acceptResponse(req));
    accepted = true;
    const clientReader = new FrameReader(client, head, this.limits.maxHandshakeBytes);
    let securityResult: Buffer | undefined;
    try {
      securityResult = await greetBrowser(clientReader, (p) => client.write(encodeFrame(p, false)));
      if (serverInit) {
        // Opened ahead up to ServerInit: the viewer's ClientInit is answered here, a round trip
        // to the desktop saved. The ServerInit goes out as the stream's first bytes below.
        if (securityResult) client.write(encodeFrame(securityResult, false));
        securityResult = undefined;
        await readClientInit(clientReader);
      }
      if (signal.aborted) throw new Error('timed out');
      mark('viewerGreeted');
    } catch (err) {
      this.o.logger.warn({ sessionId, err: (err as Error).message }, 'viewer handshake failed');
      this.o.metrics?.handshakeFailed('viewer');
      upstream.destroy();
      if (err instanceof FrameTooLargeError) {
        return this.closeHandshake(client, CloseCode.HandshakeTooLarge, `The viewer sent more than the ${err.limit} bytes the VNC handshake needs`);
      }
      return this.closeHandshake(client, CloseCode.HandshakeFailed, `VNC handshake failed: ${(err as Error).message}`);
    } finally {
      signal.removeEventListener('abort', abortHandshake);
    }

    // 3. From here on: bytes, both ways, untouched. Hand over whatever arrived early first.
    const early = { fromClient: clientReader.detach(), fromUpstream: upstreamReader.detach() };
    if (upstreamReader.error) {
      // Whatever websockify sent meanwhile is lost (or was too much), so the stream would be garbled.
      this.o.logger.warn({ sessionId, err: upstreamReader.error.message }, 'session stream failed during the viewer handshake');
      this.o.metrics?.handshakeFailed('session');
      upstream.destroy();
      return this.closeHandshake(client, CloseCode.StreamUnavailable, 'The session is running but its desktop stream failed; try again');
    }
    // A view-only viewer's early bytes are read like the rest of its stream, not passed on.
    const inbound = target.viewOnly ? new ViewOnlyInbound(client, upstream, { afterClientInit: serverInit !== undefined }) : undefined;
    if (inbound) {
      inbound.pushPayload(early.fromClient.payload);
      inbound.pushRaw(early.fromClient.raw);
    } else {
      if (early.fromClient.payload.length > 0) upstream.write(encodeFrame(early.fromClient.payload, true));
      if (early.fromClient.raw.length > 0) upstream.write(early.fromClient.raw);
    }
    // The VNC server waits for ClientInit, which the browser sends only after this, so
    // nothing of the server's can come before it.
    if (securityResult) client.write(encodeFrame(securityResult, false));
    // What the desktop sent so far goes the stream's way (to the recorder too), ServerInit first.
    const fromUpstream = [serverInit, early.fromUpstream.payload].filter((b): b is Buffer => b !== undefined && b.length > 0).map((b) => encodeFrame(b, false));
    if (client instanceof net.Socket) {
      client.setNoDelay(true);
      client.setTimeout(0);
    }
    this.pending.delete(client);
    this.o.logger.debug({ sessionId, ms: took }, 'stream opened');
    const viewer = target.viewer && { ...target.viewer, ...(this.o.addressOf ? { address: this.o.addressOf(req) } : {}) };
    this.track({
      sessionId,
      client,
      upstream,
      reads,
      early: Buffer.concat([...fromUpstream, early.fromUpstream.raw]),
      viewer,
      inbound,
      onOpen: target.onOpen,
      asAdmin: target.asAdmin ?? false,
    });
  }

  /** From here on the stream is open: counted, audited, recorded, watched until it closes. */
  private track({ sessionId, client, upstream, reads, early, viewer, inbound, onOpen, asAdmin }: OpenedStream): void {
    const openedAt = Date.now();
    const audit = (action: 'session.stream_open' | 'session.stream_close', details?: Record<string, unknown>) => {
      if (viewer) this.o.audit?.record({ action, actor: viewer, target: { type: 'session', id: sessionId }, ...(details ? { details } : {}) });
    };
    let set = this.streams.get(sessionId);
    if (!set) this.streams.set(sessionId, (set = new Set()));
    const stream = new ViewerStream(
      client,
      upstream,
      this.limits,
      CloseCode.ViewerTooSlow,
      () => {
        set.delete(stream);
        if (set.size === 0 && this.streams.get(sessionId) === set) this.streams.delete(sessionId);
        if (this.streams.size === 0) {
          clearInterval(this.sweeper);
          this.sweeper = undefined;
        }
        this.o.metrics?.streamClosed(client);
        released?.();
        recording?.end();
        audit('session.stream_close', { seconds: Math.round((Date.now() - openedAt) / 1000), ...(signInEnded ? { reason: 'sign_in_ended' } : {}) });
        this.o.onActivity?.(sessionId);
      },
      (reason) => this.o.logger.warn({ sessionId, reason }, 'viewer cut'),
      reads,
      inbound,
    );
    let released: (() => void) | undefined;
    /** Closed because the viewer's sign-in no longer allows the stream (StreamSignIns). */
    let signInEnded = false;
    this.watchers.set(stream, {
      ...(viewer ? { viewer } : {}),
      asAdmin,
      close: (code, reason) => {
        signInEnded = true;
        stream.close(code, reason);
      },
    });
    set.add(stream);
    this.o.metrics?.streamOpened(client);
    audit('session.stream_open');
    this.o.onActivity?.(sessionId);
    const recording = this.o.recorder?.open(sessionId, viewer);
    stream.tap = recording;
    stream.start(early);
    released = onOpen?.((code, reason) => stream.close(code, reason));
    // It finished its handshake while Sortie began to drain.
    if (this.draining) stream.close(CloseCode.ReconnectNow, RECONNECT_REASON);
    // One timer for all streams looks for stalled viewers; a timer per write would cost more.
    this.sweeper ??= setInterval(() => {
      const now = Date.now();
      for (const streams of this.streams.values()) for (const s of streams) s.check(now);
    }, Math.max(50, Math.min(1000, this.limits.stallTimeoutMs / 4, this.limits.pingIntervalMs / 4))).unref();
  }

  /**
   * Closes a browser mid-handshake with a code it can show. Its further bytes are read and
   * dropped (not kept) until it answers the close, or the grace period runs out.
   */
  private closeHandshake(client: Duplex, code: CloseCodeValue, reason: string): void {
    client.on('data', () => {});
    client.resume();
    client.end(encodeClose(code, reason));
    const timer = setTimeout(() => client.destroy(), Math.min(this.limits.closeGraceMs, 2000)).unref();
    client.once('end', () => client.destroy());
    client.once('close', () => clearTimeout(timer));
  }

  /**
   * Completes the upgrade only to close it with a code. Once per socket (a second call would
   * throw inside a promise chain and end the process), and with a reason cut to the 123
   * bytes a close frame holds, for the same reason.
   */
  private refuse(req: IncomingMessage, socket: Duplex, head: Buffer, code: number, reason: string): void {
    if (socket.destroyed || this.refused.has(socket)) return;
    this.refused.add(socket);
    this.o.metrics?.streamRefused(code);
    this.refuser.handleUpgrade(req, socket, head, (ws) => ws.close(code, closeReason(reason)));
  }
}


/** A stream past its handshake, as StreamRelay.track takes it over. */
interface OpenedStream {
  sessionId: string;
  client: Duplex;
  upstream: net.Socket;
  reads: ReusedReads;
  /** What the desktop sent during the handshake, ServerInit first, as frames for the viewer. */
  early: Buffer;
  /** Who watches: audited, recorded, their sign-in re-checked (StreamSignIns). */
  viewer: Principal | undefined;
  /** The filter of a view-only viewer's input. */
  inbound: ViewOnlyInbound | undefined;
  onOpen: Extract<StreamTarget, { ok: true }>['onOpen'];
  /** Opened by an admin through their admin right, re-checked as such. */
  asAdmin: boolean;
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
