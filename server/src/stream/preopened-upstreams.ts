import type net from 'node:net';
import type { Logger } from 'pino';
import type { Endpoint } from '../runners/runner.js';
import type { ReusedReads } from './reused-reads.js';
import { authenticateToServer, initialiseServer } from './rfb-handshake.js';
import { openUpstream } from './upstream.js';
import { encodeFrame, FrameReader } from './ws-frames.js';

/** A connection to a session's websockify that has already proved the session's VNC password. */
export interface AuthenticatedUpstream {
  socket: net.Socket;
  reads: ReusedReads;
  /** Holds anything websockify sent after the ServerInit (nothing, until the viewer asks). */
  reader: FrameReader;
  /** The desktop's ServerInit, asked for ahead too: the relay answers the viewer's ClientInit with it. */
  serverInit: Buffer;
}

interface Entry {
  endpoint: Endpoint;
  onClose?: () => void;
  /** Closes it if nobody took it in time (a handoff's); a pooled session's waits for its claim. */
  expiry?: NodeJS.Timeout;
  ready: Promise<AuthenticatedUpstream | undefined>;
  /** Set once it was dropped (its session ended, its socket closed): nobody gets it. */
  dropped: boolean;
}

/**
 * Connections Sortie opens to pooled sessions' websockify before anyone claims them, so the
 * first viewer of a warm launch finds the session's side of its stream already standing.
 *
 * Opening that side costs a WebSocket upgrade (websockify forks a process per connection),
 * Xvnc's greeting, the VNC password's challenge and ClientInit/ServerInit: several round
 * trips and a few hundred ms on a busy node, all of it after the viewer asked. Done ahead,
 * the viewer waits only for its own handshake with Sortie, which answers its ClientInit with
 * the ServerInit kept. The connection then waits with nothing asked of the desktop: a VNC
 * server sends no picture before a FramebufferUpdateRequest. If the desktop's size changes
 * meanwhile, Xvnc drops the connection (it has not said it handles resizes) and it is
 * forgotten, so a ServerInit handed out is never stale.
 *
 * A preopened connection is Sortie's own: the relay hands it only to a viewer its `resolve`
 * let in, and that refuses every viewer of a session still in the pool. It is used once,
 * by the first viewer; later viewers and any other replica open their own as usual.
 *
 * The same serves a stream handoff (stream-handoff.ts): a replica that drains names its
 * sessions, and the others open theirs ahead for the viewers about to reconnect, each for
 * a while only.
 */
export class PreopenedUpstreams {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly o: {
      logger: Logger;
      /** How long opening and authenticating may take before it is given up. */
      handshakeTimeoutMs: number;
      /** Most bytes websockify may send during the handshake, or while the connection waits. */
      maxHandshakeBytes: number;
    },
  ) {}

  /**
   * Opens and authenticates a connection to `endpoint` for `sessionId`'s next viewer, unless
   * one exists; with `forMs`, it is closed if no viewer took it by then.
   */
  open(sessionId: string, endpoint: Endpoint, secret: string | undefined, forMs?: number): void {
    if (this.entries.has(sessionId)) return;
    const entry: Entry = { endpoint, dropped: false, ready: Promise.resolve(undefined) };
    this.entries.set(sessionId, entry);
    if (forMs !== undefined) entry.expiry = setTimeout(() => this.entries.get(sessionId) === entry && this.drop(sessionId), forMs).unref();
    const began = performance.now();
    entry.ready = this.connect(endpoint, secret).then(
      (opened) => {
        this.o.logger.debug({ sessionId, ms: Math.round(performance.now() - began) }, 'session stream opened ahead');
        if (entry.dropped) {
          opened.socket.destroy();
          return undefined;
        }
        // Gone before a viewer came (the pod was replaced, websockify stopped): forget it.
        entry.onClose = () => this.forget(sessionId, entry);
        opened.socket.once('close', entry.onClose);
        opened.socket.setKeepAlive(true, 60_000);
        return opened;
      },
      (err: unknown) => {
        this.forget(sessionId, entry);
        this.o.logger.debug({ sessionId, err: (err as Error).message }, 'could not open a session stream ahead');
        return undefined;
      },
    );
  }

  /**
   * The connection opened ahead for `sessionId` to `endpoint`, once (waiting for it if it is
   * still being opened); undefined if there is none, it broke, or it goes elsewhere.
   */
  async take(sessionId: string, endpoint: Endpoint): Promise<AuthenticatedUpstream | undefined> {
    const entry = this.entries.get(sessionId);
    if (!entry) return undefined;
    // Whatever happens next, it is this viewer's or nobody's.
    this.entries.delete(sessionId);
    clearTimeout(entry.expiry);
    if (entry.endpoint.host !== endpoint.host || entry.endpoint.port !== endpoint.port) {
      void entry.ready.then((opened) => opened?.socket.destroy());
      return undefined;
    }
    const opened = await entry.ready;
    if (!opened || opened.socket.destroyed || opened.reader.error) {
      opened?.socket.destroy();
      return undefined;
    }
    if (entry.onClose) opened.socket.off('close', entry.onClose);
    return opened;
  }

  /** Closes the connection opened ahead for `sessionId`, if any (its session ended). */
  drop(sessionId: string): void {
    const entry = this.entries.get(sessionId);
    if (!entry) return;
    this.forget(sessionId, entry);
    void entry.ready.then((opened) => opened?.socket.destroy());
  }

  /** Sessions with a connection opened or being opened ahead. */
  sessionIds(): string[] {
    return [...this.entries.keys()];
  }

  close(): void {
    for (const id of this.sessionIds()) this.drop(id);
  }

  private forget(sessionId: string, entry: Entry): void {
    entry.dropped = true;
    clearTimeout(entry.expiry);
    if (this.entries.get(sessionId) === entry) this.entries.delete(sessionId);
  }

  private async connect(endpoint: Endpoint, secret: string | undefined): Promise<AuthenticatedUpstream> {
    const signal = AbortSignal.timeout(this.o.handshakeTimeoutMs);
    const { socket, reads, rest } = await openUpstream(endpoint, signal);
    // It may wait for hours: a reset meanwhile must end it, not Sortie (the relay adds its own later).
    socket.on('error', () => socket.destroy());
    const reader = new FrameReader(socket, rest, this.o.maxHandshakeBytes);
    const onAbort = () => socket.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    const send = (p: Buffer) => socket.write(encodeFrame(p, true));
    let serverInit: Buffer;
    try {
      await authenticateToServer(reader, send, secret);
      serverInit = await initialiseServer(reader, send);
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return { socket, reads, reader, serverInit };
  }
}
