import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

/**
 * Just enough WebSocket framing (RFC 6455) for the few small messages of an RFB handshake.
 * After the handshake the relay pipes raw bytes, so this never sees the desktop stream.
 */

const OPCODE_CONTINUATION = 0x0;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;

/** One binary frame; client-to-server frames must be masked, server-to-client must not. */
export function encodeFrame(payload: Buffer, masked: boolean, opcode = OPCODE_BINARY): Buffer {
  const length = payload.length;
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const header = Buffer.alloc(2 + extended + (masked ? 4 : 0));
  header[0] = 0x80 | opcode;
  header[1] = (masked ? 0x80 : 0) | (extended === 0 ? length : extended === 2 ? 126 : 127);
  if (extended === 2) header.writeUInt16BE(length, 2);
  if (extended === 8) header.writeBigUInt64BE(BigInt(length), 2);
  if (!masked) return Buffer.concat([header, payload]);
  const mask = randomBytes(4);
  mask.copy(header, 2 + extended);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, body]);
}

/** A close frame from the server side, with a code and a reason a person can read. */
/** A control frame carries at most 125 bytes: the code's 2 and this many of reason. */
const MAX_CLOSE_REASON_BYTES = 123;

/** The first `maxBytes` of `text` as UTF-8, cut between characters, never inside one. */
export function cutUtf8(text: string, maxBytes: number): string {
  const full = Buffer.from(text, 'utf8');
  let end = Math.min(full.length, maxBytes);
  while (end < full.length && end > 0 && (full[end]! & 0xc0) === 0x80) end--;
  return full.subarray(0, end).toString('utf8');
}

/**
 * A close reason that fits a close frame, marked with "…" when it had to be cut (a browser
 * fails a connection whose reason is too long or not valid UTF-8; `ws` throws on one).
 */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  return `${cutUtf8(reason, MAX_CLOSE_REASON_BYTES - Buffer.byteLength('…'))}…`;
}

export function encodeClose(code: number, reason: string): Buffer {
  const text = Buffer.from(cutUtf8(reason, MAX_CLOSE_REASON_BYTES), 'utf8');
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return encodeFrame(payload, false, OPCODE_CLOSE);
}

/** An empty ping from the server side; the peer answers with a pong. */
export function encodePing(): Buffer {
  return encodeFrame(Buffer.alloc(0), false, OPCODE_PING);
}

/** A frame, or frames not yet read, larger than the handshake can need: the peer is not speaking RFB. */
export class FrameTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`${bytes} bytes of handshake data arrived, more than the ${limit} the VNC handshake needs`);
  }
}

/** Enough for every message of an RFB 3.7/3.8 handshake (the largest, a refusal reason, is cut at 1 KiB). */
export const DEFAULT_HANDSHAKE_LIMIT = 4096;

/** The largest WebSocket frame header: 2 bytes, an 8-byte length and a 4-byte mask. */
const MAX_HEADER = 14;

/**
 * Reads exact numbers of payload bytes from a socket's WebSocket frames. `detach()` stops
 * reading and hands back what arrived beyond what was read, so it can be forwarded before
 * the raw pipe starts and nothing is lost or reordered.
 *
 * Nothing here grows past `limit`: a frame that announces more, or unread payload beyond it,
 * fails the reader at once (FrameTooLargeError) and it stops reading, so a peer streaming an
 * endless frame costs the server one socket chunk, not memory.
 */
export class FrameReader {
  private raw: Buffer = Buffer.alloc(0);
  private payload: Buffer = Buffer.alloc(0);
  private waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer) => this.push(chunk);
  private readonly onEnd = () => this.fail(new Error('the connection closed during the handshake'));

  constructor(
    private readonly socket: Duplex,
    initial: Buffer = Buffer.alloc(0),
    private readonly limit = DEFAULT_HANDSHAKE_LIMIT,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.resume(); // it may have been paused while its HTTP upgrade was read
    if (initial.length > 0) this.push(initial);
  }

  read(n: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.payload.length >= n) return Promise.resolve(this.take(n));
    return new Promise((resolve, reject) => (this.waiting = { n, resolve, reject }));
  }

  /** Why reading failed, if it did. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Stops reading; returns unread payload (of whole frames) and bytes of frames not yet complete. */
  detach(): { payload: Buffer; raw: Buffer } {
    this.stopListening();
    this.socket.pause();
    return { payload: this.payload, raw: this.raw };
  }

  private stopListening(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
  }

  private push(chunk: Buffer): void {
    if (this.failure) return;
    this.raw = this.raw.length === 0 ? chunk : Buffer.concat([this.raw, chunk]);
    for (;;) {
      const header = parseFrameHeader(this.raw);
      if (!header) break;
      // Decided on the header alone, before any of an oversized payload is kept.
      if (header.length > this.limit) return this.overflow(header.length);
      const size = header.headerSize + header.length;
      if (this.raw.length < size) break;
      const frame = unmask(this.raw, header);
      this.raw = this.raw.subarray(size);
      if (header.opcode === OPCODE_CLOSE) return this.fail(new Error('the peer closed the WebSocket during the handshake'));
      if (header.opcode === OPCODE_BINARY || header.opcode === OPCODE_CONTINUATION) {
        this.payload = this.payload.length === 0 ? frame : Buffer.concat([this.payload, frame]);
        // Many small frames add up just as one big one does.
        if (this.payload.length > this.limit) return this.overflow(this.payload.length);
      }
      // Ping and pong carry no stream bytes; the peer's own timers cover liveness here.
    }
    // What is left is one incomplete frame of at most `limit` bytes; more is not a frame we would accept.
    if (this.raw.length > this.limit + MAX_HEADER) return this.overflow(this.raw.length);
    if (this.waiting && this.payload.length >= this.waiting.n) {
      const { n, resolve } = this.waiting;
      this.waiting = undefined;
      resolve(this.take(n));
    }
  }

  private overflow(bytes: number): void {
    this.stopListening();
    this.raw = Buffer.alloc(0);
    this.payload = Buffer.alloc(0);
    this.fail(new FrameTooLargeError(bytes, this.limit));
  }

  private take(n: number): Buffer {
    const out = this.payload.subarray(0, n);
    this.payload = this.payload.subarray(n);
    return out;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.waiting?.reject(err);
    this.waiting = undefined;
  }
}

export interface FrameHeader {
  opcode: number;
  /** Where the mask key starts, if the frame is masked. */
  maskAt: number | undefined;
  length: number;
  headerSize: number;
}

/**
 * The frame header at the start of `buf`, once all of it has arrived. It reads, it does not
 * judge: callers facing a browser add their own rules (see view-only-filter.ts).
 */
export function parseFrameHeader(buf: Buffer): FrameHeader | undefined {
  if (buf.length < 2) return undefined;
  const opcode = buf[0]! & 0x0f;
  const masked = (buf[1]! & 0x80) !== 0;
  let length = buf[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    // Beyond 2^53 the number is approximate, but still far beyond any limit.
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const maskAt = masked ? offset : undefined;
  if (masked) offset += 4;
  if (buf.length < offset) return undefined;
  return { opcode, maskAt, length, headerSize: offset };
}

function unmask(buf: Buffer, header: FrameHeader): Buffer {
  const payload = Buffer.from(buf.subarray(header.headerSize, header.headerSize + header.length));
  const { maskAt } = header;
  if (maskAt !== undefined) for (let i = 0; i < payload.length; i++) payload[i]! ^= buf[maskAt + (i & 3)]!;
  return payload;
}
