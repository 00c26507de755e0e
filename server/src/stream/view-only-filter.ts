import type { Duplex } from 'node:stream';
import { encodeFrame, parseFrameHeader } from './ws-frames.js';

/**
 * The browser-to-desktop direction of a view-only viewer. Where a viewer with control has its
 * bytes piped to websockify untouched, a view-only viewer's WebSocket frames are decoded, the
 * RFB messages in them read one by one, every input message (keys, pointer, clipboard,
 * resizing, power actions) dropped, and the rest sent on in frames of Sortie's own. A message
 * the relay does not know, or one larger than any it forwards, ends the stream: passing on
 * what cannot be checked would make "view only" a wish.
 *
 * Memory is bounded by one message (`MAX_MESSAGE_BYTES`) plus one socket chunk: frames are
 * unmasked as their bytes arrive, never gathered whole, and dropped messages are skipped
 * without being kept.
 */

/** More than the largest message a viewer needs to send (SetEncodings of every encoding known). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** Why a view-only stream was closed: a message the relay will not pass on unchecked. */
export class UncheckedInput extends Error {}

export interface FilterCounts {
  forwarded: number;
  dropped: number;
}

type Verdict = { length: number; forward: boolean } | { error: string } | undefined;

const OPCODE_CONTINUATION = 0x0;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;

/**
 * The length of the RFB client message at the start of `b` and whether it may pass, once
 * enough of its header has arrived to tell; undefined until then.
 */
export function measure(b: Buffer): Verdict {
  const type = b[0]!;
  switch (type) {
    case 0: // SetPixelFormat
      return { length: 20, forward: true };
    case 2: // SetEncodings
      return b.length < 4 ? undefined : { length: 4 + 4 * b.readUInt16BE(2), forward: true };
    case 3: // FramebufferUpdateRequest
      return { length: 10, forward: true };
    case 4: // KeyEvent
      return { length: 8, forward: false };
    case 5: // PointerEvent
      return { length: 6, forward: false };
    case 6: {
      // ClientCutText; a negative length is the extended clipboard's (flags and data).
      if (b.length < 8) return undefined;
      const length = b.readInt32BE(4);
      return { length: 8 + Math.abs(length), forward: false };
    }
    case 150: // EnableContinuousUpdates
      return { length: 10, forward: true };
    case 248: // ClientFence: flags, then at most 64 bytes of payload
      if (b.length < 9) return undefined;
      if (b[8]! > 64) return { error: `a fence with ${b[8]} bytes of payload, more than the 64 RFB allows` };
      return { length: 9 + b[8]!, forward: true };
    case 250: // xvp: shut down, reboot or reset the machine
      return { length: 4, forward: false };
    case 251: // SetDesktopSize
      return b.length < 8 ? undefined : { length: 8 + 16 * b[6]!, forward: false };
    case 255: {
      // QEMU: extended key events (0) and audio (1); both are dropped.
      if (b.length < 2) return undefined;
      if (b[1] === 0) return { length: 12, forward: false };
      if (b[1] === 1) {
        if (b.length < 4) return undefined;
        const op = b.readUInt16BE(2);
        if (op === 0 || op === 1) return { length: 4, forward: false };
        if (op === 2) return { length: 10, forward: false };
        return { error: `QEMU audio operation ${op}, which the relay does not know` };
      }
      return { error: `QEMU message subtype ${b[1]}, which the relay does not know` };
    }
    default:
      return { error: `VNC message type ${type}, which the relay does not know` };
  }
}

/**
 * Reads RFB client messages from a byte stream (the payload of the viewer's frames), starting
 * with ClientInit, and answers the bytes that may go on. ClientInit's flag is forced to
 * "shared": a watcher must not be able to push the owner's viewer off the desktop.
 */
export class RfbInputFilter {
  private pending: Buffer = Buffer.alloc(0);
  private skip = 0;
  private clientInit: boolean;
  readonly counts: FilterCounts = { forwarded: 0, dropped: 0 };

  /** `afterClientInit`: the relay answered the viewer's ClientInit itself (a connection opened ahead). */
  constructor(options: { afterClientInit?: boolean } = {}) {
    this.clientInit = !options.afterClientInit;
  }

  /** The bytes of whole messages that may pass; throws UncheckedInput for a message that may not be read. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length);
        this.skip -= n;
        buf = buf.subarray(n);
        if (this.skip > 0) break;
        continue;
      }
      if (buf.length === 0) break;
      if (this.clientInit) {
        this.clientInit = false;
        out.push(Buffer.from([1]));
        buf = buf.subarray(1);
        continue;
      }
      const verdict = measure(buf);
      if (!verdict) break;
      if ('error' in verdict) throw new UncheckedInput(`The viewer sent ${verdict.error}`);
      if (verdict.length > MAX_MESSAGE_BYTES) {
        throw new UncheckedInput(`The viewer sent a ${verdict.length}-byte message, more than the ${MAX_MESSAGE_BYTES} a view-only stream passes`);
      }
      if (verdict.forward) {
        if (buf.length < verdict.length) break;
        // Copied: `buf` may be a socket chunk that is reused or kept whole otherwise.
        out.push(Buffer.from(buf.subarray(0, verdict.length)));
        this.counts.forwarded++;
        buf = buf.subarray(verdict.length);
      } else {
        this.counts.dropped++;
        this.skip = verdict.length;
      }
    }
    // Bounded: at most one message under MAX_MESSAGE_BYTES, or a header still incomplete.
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    return out;
  }
}

/** A frame from the viewer: control frames pass whole, data frames as their payload arrives. */
export interface FrameSink {
  data(payload: Buffer): void;
  control(opcode: number, payload: Buffer): void;
}

/** Most bytes of a frame header: 2, an 8-byte length and a 4-byte mask. */
const MAX_HEADER = 14;

/**
 * Decodes the WebSocket frames a browser sends (RFC 6455, masked) as their bytes arrive,
 * handing data payloads on in pieces, unmasked. Nothing is kept but a header and a control
 * frame's payload (at most 125 bytes).
 */
export class MaskedFrameDecoder {
  private header: Buffer = Buffer.alloc(0);
  private frame: { opcode: number; mask: Buffer; remaining: number; offset: number; control: Buffer[] } | undefined;

  constructor(private readonly sink: FrameSink) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.frame) {
        const take = Math.min(MAX_HEADER - this.header.length, chunk.length - at);
        const head = Buffer.concat([this.header, chunk.subarray(at, at + take)]);
        const parsed = parseHeader(head);
        if (!parsed) {
          this.header = head;
          at += take;
          continue;
        }
        // Only the header's own bytes were used; the rest of `take` is payload.
        at += parsed.size - this.header.length;
        this.header = Buffer.alloc(0);
        this.frame = { opcode: parsed.opcode, mask: parsed.mask, remaining: parsed.length, offset: 0, control: [] };
        if (parsed.length === 0) this.endFrame();
        continue;
      }
      const frame = this.frame;
      const n = Math.min(frame.remaining, chunk.length - at);
      const piece = Buffer.from(chunk.subarray(at, at + n));
      for (let i = 0; i < piece.length; i++) piece[i]! ^= frame.mask[(frame.offset + i) & 3]!;
      frame.offset += n;
      frame.remaining -= n;
      at += n;
      if (frame.opcode >= 0x8) frame.control.push(piece);
      else this.sink.data(piece);
      if (frame.remaining === 0) this.endFrame();
    }
  }

  private endFrame(): void {
    const frame = this.frame!;
    this.frame = undefined;
    if (frame.opcode >= 0x8) this.sink.control(frame.opcode, Buffer.concat(frame.control));
  }
}

/** The header at the start of `buf` once whole, held to what a browser's frames must be. */
function parseHeader(buf: Buffer): { opcode: number; mask: Buffer; length: number; size: number } | undefined {
  const header = parseFrameHeader(buf);
  if (!header) return undefined;
  const { opcode, maskAt, length, headerSize } = header;
  if (opcode === OPCODE_TEXT) throw new UncheckedInput('The viewer sent a text frame; the desktop stream is binary');
  if (![OPCODE_CONTINUATION, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG].includes(opcode)) {
    throw new UncheckedInput(`The viewer sent a WebSocket frame of opcode ${opcode}, which the relay does not know`);
  }
  if (maskAt === undefined) throw new UncheckedInput('The viewer sent an unmasked frame, which a browser never does');
  if (length > Number.MAX_SAFE_INTEGER) throw new UncheckedInput('The viewer sent a frame longer than any stream carries');
  if (opcode >= 0x8 && length > 125) throw new UncheckedInput('The viewer sent a control frame longer than the 125 bytes WebSocket allows');
  return { opcode, mask: Buffer.from(buf.subarray(maskAt, maskAt + 4)), length, size: headerSize };
}

/**
 * The view-only direction between the viewer's socket and websockify's: decoder, filter and
 * fresh frames, with websockify's backpressure holding the viewer back as `pipe` would. The
 * viewer's close, ping and pong frames go on as they are, so the close handshake and
 * keep-alives work as on a piped stream.
 */
export class ViewOnlyInbound {
  private readonly filter: RfbInputFilter;
  private readonly decoder: MaskedFrameDecoder;
  private violation: string | undefined;
  private onViolation: ((reason: string) => void) | undefined;
  private stopped = false;
  private readonly onData = (chunk: Buffer) => this.pushRaw(chunk);

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    options: { afterClientInit?: boolean } = {},
  ) {
    this.filter = new RfbInputFilter(options);
    this.decoder = new MaskedFrameDecoder({
      data: (payload) => this.forward(this.filter.push(payload)),
      control: (opcode, payload) => this.send(encodeFrame(payload, true, opcode)),
    });
  }

  get counts(): FilterCounts {
    return this.filter.counts;
  }

  /** Payload that arrived before the stream began (after the handshake), already unframed. */
  pushPayload(payload: Buffer): void {
    if (payload.length === 0) return;
    this.guard(() => this.forward(this.filter.push(payload)));
  }

  /** Raw frame bytes from the viewer. */
  pushRaw(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.guard(() => this.decoder.push(chunk));
  }

  /** Starts reading the viewer's socket; `onViolation` is told (once) why the stream must close. */
  start(onViolation: (reason: string) => void): void {
    this.onViolation = onViolation;
    if (this.violation !== undefined) return onViolation(this.violation);
    this.client.on('data', this.onData);
    this.client.resume();
  }

  stop(): void {
    this.stopped = true;
    this.client.off('data', this.onData);
  }

  private guard(step: () => void): void {
    if (this.stopped || this.violation !== undefined) return;
    try {
      step();
    } catch (err) {
      if (!(err instanceof UncheckedInput)) throw err;
      this.violation = err.message;
      this.stop();
      this.onViolation?.(err.message);
    }
  }

  private forward(messages: Buffer[]): void {
    if (messages.length > 0) this.send(encodeFrame(messages.length === 1 ? messages[0]! : Buffer.concat(messages), true));
  }

  private send(frame: Buffer): void {
    if (this.upstream.destroyed) return;
    if (!this.upstream.write(frame)) {
      this.client.pause();
      this.upstream.once('drain', () => {
        if (!this.stopped) this.client.resume();
      });
    }
  }
}
