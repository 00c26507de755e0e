import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

/**
 * Just enough WebSocket framing (RFC 6455) for the few small messages of an RFB handshake.
 * After the handshake the relay pipes raw bytes, so this never sees the desktop stream.
 */

const OPCODE_CONTINUATION = 0x0;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;

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
export function encodeClose(code: number, reason: string): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason.slice(0, 120)));
  payload.writeUInt16BE(code, 0);
  payload.write(reason.slice(0, 120), 2);
  return encodeFrame(payload, false, OPCODE_CLOSE);
}

/**
 * Reads exact numbers of payload bytes from a socket's WebSocket frames. `detach()` stops
 * reading and hands back what arrived beyond what was read, so it can be forwarded before
 * the raw pipe starts and nothing is lost or reordered.
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

  /** Stops reading; returns unread payload (of whole frames) and bytes of frames not yet complete. */
  detach(): { payload: Buffer; raw: Buffer } {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.pause();
    return { payload: this.payload, raw: this.raw };
  }

  private push(chunk: Buffer): void {
    this.raw = this.raw.length === 0 ? chunk : Buffer.concat([this.raw, chunk]);
    for (;;) {
      const frame = parseFrame(this.raw);
      if (!frame) break;
      this.raw = this.raw.subarray(frame.size);
      if (frame.opcode === OPCODE_CLOSE) return this.fail(new Error('the peer closed the WebSocket during the handshake'));
      if (frame.opcode === OPCODE_BINARY || frame.opcode === OPCODE_CONTINUATION) {
        this.payload = this.payload.length === 0 ? frame.payload : Buffer.concat([this.payload, frame.payload]);
      }
      // Ping and pong carry no stream bytes; the peer's own timers cover liveness here.
    }
    if (this.waiting && this.payload.length >= this.waiting.n) {
      const { n, resolve } = this.waiting;
      this.waiting = undefined;
      resolve(this.take(n));
    }
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

function parseFrame(buf: Buffer): { opcode: number; payload: Buffer; size: number } | undefined {
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
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const maskAt = offset;
  if (masked) offset += 4;
  if (buf.length < offset + length) return undefined;
  const payload = Buffer.from(buf.subarray(offset, offset + length));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= buf[maskAt + (i & 3)]!;
  return { opcode, payload, size: offset + length };
}
