import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode, type CloseCodeValue } from './close-codes.js';
import { FrameBoundary } from './frame-boundary.js';
import type { ReusedReads } from './reused-reads.js';
import { encodeClose, encodePing } from './ws-frames.js';

export interface ViewerLimits {
  /** Bytes that may wait in Sortie for a viewer before it is cut. */
  maxPendingBytes: number;
  /** How long a viewer may leave bytes waiting without taking any of them before it is cut. */
  stallTimeoutMs: number;
  /** How long a cut viewer has to read what is queued and the close frame before its socket goes. */
  closeGraceMs: number;
  /** How long the stream to the viewer may be silent before Sortie sends it a ping. */
  pingIntervalMs: number;
}

/** The rest of a frame Sortie will still wait for before it closes a viewer; websockify's are at most 64 KiB. */
const MAX_FRAME_TO_FINISH = 1024 * 1024;
/** How long to wait for websockify to deliver the rest of a frame when cutting. */
const FINISH_TIMEOUT_MS = 2000;
const PING = encodePing();

/**
 * One viewer's stream once both handshakes are done: the browser's bytes go to websockify
 * with `pipe` (so a browser that floods is held back by TCP, not buffered), and websockify's
 * bytes go to the browser as they arrive, untouched.
 *
 * Websockify's side is read eagerly on purpose. If Sortie stopped reading when the viewer
 * does, websockify would keep reading the VNC server and queue without limit behind Sortie.
 * So the queue is here instead, where it is bounded: a viewer with more than
 * `maxPendingBytes` waiting, or with bytes waiting and none taken for `stallTimeoutMs`, is
 * cut with `cutCode` after the frame in flight, so the close frame reaches it if it ever reads.
 */
export class ViewerStream {
  private readonly frames = new FrameBoundary();
  /** Bytes handed to the browser's socket; with its writableLength, how much it has taken. */
  private written = 0;
  private lastTaken = 0;
  private lastProgress = Date.now();
  /** When Sortie last sent the viewer anything: desktop bytes or a ping. */
  private lastSent = Date.now();
  private cutting: { code: CloseCodeValue; reason: string } | undefined;
  private finished = false;
  private done = false;
  /** Also given every chunk of the desktop stream, e.g. to record it; it must copy what it keeps and never wait. */
  tap: { data(chunk: Buffer): void } | undefined;
  private finishTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly client: Duplex,
    private readonly upstream: net.Socket,
    private readonly limits: ViewerLimits,
    private readonly cutCode: CloseCodeValue,
    /** Called once, when both sides are gone. */
    private readonly onClosed: () => void,
    /** Called once, when the viewer is cut for not reading. */
    private readonly onCut: (reason: string) => void,
    /** Websockify's reads into a reused buffer, if the socket was opened with them; else its `data` events. */
    private readonly reads?: ReusedReads,
    /** For a view-only viewer: reads its bytes and passes on only what is not input, instead of the pipe. */
    private readonly inbound?: { start(onViolation: (reason: string) => void): void; stop(): void },
  ) {}

  /** Starts relaying; `early` is the start of a frame websockify sent before the relay began. */
  start(early: Buffer = Buffer.alloc(0)): void {
    const teardown = () => this.teardown();
    // A half-closed peer means the conversation is over; don't leave the other half open.
    for (const event of ['error', 'close', 'end']) {
      this.client.on(event, teardown);
      // Once the close frame is queued, websockify's side is gone by our own doing.
      this.upstream.on(event, () => {
        if (!this.finished) teardown();
      });
    }
    if (early.length > 0) this.fromUpstream(early);
    if (this.reads) {
      // The chunk lives in a buffer the next read reuses, unless the viewer's socket still holds it.
      this.reads.relayTo((chunk) => {
        this.fromUpstream(chunk);
        return this.client.writableLength > 0;
      });
    } else {
      this.upstream.on('data', (chunk: Buffer) => this.fromUpstream(chunk));
    }
    this.upstream.resume();
    if (this.inbound) this.inbound.start((reason) => this.close(CloseCode.UncheckedInput, reason));
    else this.client.pipe(this.upstream);
  }

  /**
   * Cuts the viewer if it has had bytes waiting and taken none for too long; pings it if
   * the stream has been silent for `pingIntervalMs`.
   *
   * An idle desktop sends nothing, and proxies between the browser and Sortie close a
   * connection silent for a minute or so. A ping (which the browser answers with a pong on
   * its own, and websockify ignores when the pong reaches it) keeps both directions busy.
   * It goes only between two of websockify's frames, and a viewer that stops reading is
   * still caught by the stall check, pings included.
   */
  check(now: number): void {
    if (this.cutting || this.done) return;
    if (now - this.lastSent >= this.limits.pingIntervalMs && this.frames.atBoundary) this.write(PING);
    const waiting = this.client.writableLength;
    const taken = this.written - waiting;
    if (waiting === 0 || taken !== this.lastTaken) {
      this.lastTaken = taken;
      this.lastProgress = now;
      return;
    }
    if (now - this.lastProgress >= this.limits.stallTimeoutMs) {
      this.cut(`The viewer took none of the desktop stream for ${Math.round((now - this.lastProgress) / 1000)} s and was disconnected`);
    }
  }

  /** Ends both sides now. */
  destroy(): void {
    this.teardown();
  }

  private fromUpstream(chunk: Buffer): void {
    if (this.cutting) return this.finishFrame(chunk);
    this.frames.advance(chunk);
    this.write(chunk);
    this.tap?.data(chunk);
    if (this.client.writableLength > this.limits.maxPendingBytes) {
      this.cut(`The viewer fell more than ${mib(this.limits.maxPendingBytes)} behind the desktop stream and was disconnected`);
    }
  }

  private write(chunk: Buffer): void {
    this.written += chunk.length;
    this.lastSent = Date.now();
    this.client.write(chunk);
  }

  /**
   * Closes the viewer with `code` after the frame in flight, as a cut does (e.g. when Sortie
   * shuts down), so the close frame reaches it and says why.
   */
  close(code: CloseCodeValue, reason: string): void {
    this.stop(code, reason);
  }

  private cut(reason: string): void {
    if (this.cutting || this.done) return;
    this.onCut(reason);
    this.stop(this.cutCode, reason);
  }

  private stop(code: CloseCodeValue, reason: string): void {
    if (this.cutting || this.done) return;
    this.cutting = { code, reason };
    // From here the browser's bytes are not wanted: read and drop them so its close reply can arrive.
    this.client.unpipe(this.upstream);
    this.inbound?.stop();
    this.client.on('data', () => {});
    this.client.resume();
    const rest = this.frames.untilBoundary;
    if (rest === 0) return this.finish();
    if (rest === undefined || rest > MAX_FRAME_TO_FINISH) return this.teardown();
    this.finishTimer = setTimeout(() => this.teardown(), FINISH_TIMEOUT_MS);
  }

  /** While cutting: passes on only what completes the frame in flight, then closes. */
  private finishFrame(chunk: Buffer): void {
    if (this.finished) return;
    const used = this.frames.advance(chunk, true);
    if (used < 0) return this.write(chunk);
    this.write(chunk.subarray(0, used));
    this.finish();
  }

  private finish(): void {
    if (this.finished || this.done) return;
    this.finished = true;
    clearTimeout(this.finishTimer);
    this.upstream.removeAllListeners('data');
    this.reads?.relayTo(() => false);
    this.upstream.destroy();
    // end() sends the close frame after what is queued, then FIN; the viewer's own close
    // ('end') or the grace period ends the socket. A viewer that never reads again would
    // otherwise hold the queued bytes forever.
    this.client.end(encodeClose(this.cutting!.code, this.cutting!.reason));
    this.graceTimer = setTimeout(() => this.teardown(), this.limits.closeGraceMs);
  }

  private teardown(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.finishTimer);
    clearTimeout(this.graceTimer);
    this.client.destroy();
    this.upstream.destroy();
    this.onClosed();
  }
}

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MiB` : `${bytes} bytes`;
}
