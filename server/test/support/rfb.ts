import { randomBytes } from 'node:crypto';
import { constants as zlibConstants, deflateSync, inflateSync } from 'node:zlib';
import net from 'node:net';
import WebSocket, { type ClientOptions } from 'ws';
import { vncAuthResponse } from '../../src/stream/rfb-handshake.js';

/**
 * Just enough RFB (VNC) for tests and benchmarks, over a WebSocket (Sortie's stream, a
 * session's websockify) or plain TCP (a session's VNC server itself). The one reader of VNC
 * bytes they share.
 * RFB 3.8: https://github.com/rfbproto/rfbproto/blob/master/rfbproto.rst
 */

export const RFB_VERSION = Buffer.from('RFB 003.008\n', 'latin1');
export const SECURITY_NONE = 1;
export const SECURITY_VNC_AUTH = 2;

/** The server closed the stream; `code` says why (Sortie's close codes on its stream). */
export class StreamClosed extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`stream closed (${code} ${reason})`);
  }
}

/** Bytes from a stream of chunks (TCP data or WebSocket messages), read in exact amounts. */
export class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.wake();
  }

  /** The stream ended or broke: a read that cannot be satisfied any more rejects with `err`. */
  fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  take(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.wake();
    });
  }

  /** Whatever arrived beyond what was taken. */
  rest(): Buffer {
    const all = Buffer.concat(this.chunks);
    this.chunks = [];
    this.length = 0;
    return all;
  }

  private wake(): void {
    if (!this.waiter) return;
    const { n, resolve, reject } = this.waiter;
    if (this.length < n) {
      if (this.failure) {
        this.waiter = undefined;
        reject(this.failure);
      }
      return;
    }
    this.waiter = undefined;
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.length = all.length - n;
    resolve(all.subarray(0, n));
  }
}

/** Bytes both ways over something: read in exact amounts, written as they come. */
export interface RfbTransport {
  bytes: ByteReader;
  send: (data: Buffer) => void;
  close: () => void;
}

/** Reads an open (or opening) WebSocket's messages into a ByteReader; sends wait for the open. */
export function onWebSocket(ws: WebSocket): RfbTransport & { ws: WebSocket; detach: () => void } {
  ws.binaryType = 'nodebuffer';
  const bytes = new ByteReader();
  const queued: Buffer[] = [];
  const onOpen = () => queued.splice(0).forEach((b) => ws.send(b));
  const onMessage = (data: Buffer) => bytes.push(data);
  const onError = (err: Error) => bytes.fail(err);
  const onClose = (code: number, reason: Buffer) => bytes.fail(new StreamClosed(code, reason.toString()));
  ws.on('open', onOpen);
  ws.on('message', onMessage);
  ws.on('error', onError);
  ws.on('close', onClose);
  return {
    ws,
    bytes,
    send: (data) => (ws.readyState === WebSocket.OPEN ? ws.send(data, { binary: true }) : queued.push(data)),
    close: () => ws.terminate(),
    // Hands the socket back (for example to a load generator) once the handshake is done.
    detach: () => {
      ws.off('open', onOpen);
      ws.off('message', onMessage);
      ws.off('error', onError);
      ws.off('close', onClose);
    },
  };
}

export function overWebSocket(url: string, options: ClientOptions = {}): RfbTransport & { ws: WebSocket; detach: () => void } {
  const ws = new WebSocket(url, ['binary'], options);
  ws.on('error', () => {}); // reported through the reader
  return onWebSocket(ws);
}

/** Straight at a VNC server: a TCP port, or a session's VNC socket (`{ path }`). */
export function overSocket(target: net.NetConnectOpts): RfbTransport & { socket: net.Socket } {
  const socket = net.connect(target);
  const bytes = new ByteReader();
  socket.on('data', (chunk: Buffer) => bytes.push(chunk));
  socket.on('error', (err) => bytes.fail(err));
  socket.on('close', () => bytes.fail(new Error('closed')));
  return { socket, bytes, send: (data) => socket.write(data), close: () => socket.destroy() };
}

export interface Desktop {
  banner: string;
  width: number;
  height: number;
  name: string;
  bytesPerPixel: number;
}

export interface ConnectOptions {
  timeoutMs?: number;
  /** The VNC password, for a server that asks for one (a session's websockify). */
  password?: string;
  /** Extra headers for the WebSocket upgrade (a bearer token, a cookie). */
  headers?: Record<string, string>;
  /** The page the connection claims to come from (a browser sends its own). */
  origin?: string;
}

/**
 * A VNC viewer, step by step: `greet` (version and offered security types), `authenticate`,
 * `init` (ClientInit/ServerInit), then `frame` asks for one full update in Raw encoding.
 * `connect` does the first three. Tests that check a step themselves use `take` and `send`.
 */
export class RfbViewer {
  constructor(readonly transport: RfbTransport & { ws?: WebSocket }) {}

  get ws(): WebSocket {
    if (!this.transport.ws) throw new Error('this viewer is not on a WebSocket');
    return this.transport.ws;
  }

  static async connect(url: string, options: ConnectOptions | number = {}): Promise<{ viewer: RfbViewer; desktop: Desktop }> {
    const o = typeof options === 'number' ? { timeoutMs: options } : options;
    const viewer = new RfbViewer(overWebSocket(url, { ...(o.headers ? { headers: o.headers } : {}), ...(o.origin ? { origin: o.origin } : {}) }));
    const timer = setTimeout(() => viewer.transport.bytes.fail(new Error(`no desktop within ${o.timeoutMs ?? 15_000} ms`)), o.timeoutMs ?? 15_000);
    try {
      const greeted = await viewer.greet();
      const { offered } = greeted;
      if (o.password === undefined && !offered.includes(SECURITY_NONE)) {
        throw new Error(`security "None" not offered (offered ${offered.join(',')})`);
      }
      if (!(await viewer.authenticate(offered, o.password))) throw new Error('security handshake failed');
      return { viewer, desktop: { banner: greeted.banner, ...(await viewer.init()) } };
    } catch (err) {
      viewer.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  take(n: number): Promise<Buffer> {
    return this.transport.bytes.take(n);
  }

  send(data: Buffer): void {
    this.transport.send(data);
  }

  close(): void {
    this.transport.close();
  }

  /** Reads the server's version, answers 3.8 and reads the security types it offers. */
  async greet(): Promise<{ banner: string; offered: number[] }> {
    const banner = (await this.take(12)).toString('latin1');
    if (!/^RFB 003\.00\d\n$/.test(banner)) throw new Error(`not an RFB banner: ${JSON.stringify(banner)}`);
    this.send(RFB_VERSION);
    const count = (await this.take(1))[0]!;
    if (count === 0) throw new Error('the server refused the connection');
    return { banner: banner.trim(), offered: [...(await this.take(count))] };
  }

  /**
   * Takes "None" when offered, else VNC authentication answered with `password` (or with
   * zeros when none is given). Resolves with whether the server accepted.
   */
  async authenticate(offered: number[], password?: string): Promise<boolean> {
    if (offered.includes(SECURITY_NONE) && password === undefined) {
      this.send(Buffer.from([SECURITY_NONE]));
    } else if (offered.includes(SECURITY_VNC_AUTH)) {
      this.send(Buffer.from([SECURITY_VNC_AUTH]));
      const challenge = await this.take(16);
      this.send(password === undefined ? Buffer.alloc(16) : vncAuthResponse(challenge, password));
    } else {
      throw new Error(`no usable security type in ${offered.join(', ')}`);
    }
    return (await this.take(4)).readUInt32BE(0) === 0;
  }

  /** ClientInit (shared) and the server's ServerInit. */
  async init(): Promise<Omit<Desktop, 'banner'>> {
    this.send(Buffer.from([1]));
    const init = await this.take(24);
    const name = (await this.take(init.readUInt32BE(20))).toString('utf8');
    return { width: init.readUInt16BE(0), height: init.readUInt16BE(2), name, bytesPerPixel: init.readUInt8(4) / 8 };
  }

  /**
   * The next message from the server, whatever it is. Understands what a viewer gets after
   * SetEncodings with Raw and the pseudo-encodings in `Encoding` only.
   */
  async next(bytesPerPixel: number): Promise<ServerMessage> {
    const type = (await this.take(1))[0];
    switch (type) {
      case 0: {
        const count = (await this.take(3)).readUInt16BE(1);
        const rects: Extract<ServerMessage, { type: 'update' }>['rects'] = [];
        for (let i = 0; i < count; i++) {
          const r = await this.take(12);
          const rect = { x: r.readUInt16BE(0), y: r.readUInt16BE(2), width: r.readUInt16BE(4), height: r.readUInt16BE(6), encoding: r.readInt32BE(8) };
          if (rect.encoding === Encoding.Raw) {
            await this.take(rect.width * rect.height * bytesPerPixel);
            rects.push(rect);
          } else if (rect.encoding === Encoding.ExtendedDesktopSize) {
            const screenCount = (await this.take(4))[0]!;
            const screens: Screen[] = [];
            for (let k = 0; k < screenCount; k++) {
              const b = await this.take(16);
              screens.push({ id: b.readUInt32BE(0), x: b.readUInt16BE(4), y: b.readUInt16BE(6), width: b.readUInt16BE(8), height: b.readUInt16BE(10), flags: b.readUInt32BE(12) });
            }
            rects.push({ ...rect, screens });
          } else if (rect.encoding === Encoding.DesktopSize) {
            rects.push(rect);
          } else {
            throw new Error(`unexpected encoding ${rect.encoding} in a framebuffer update`);
          }
        }
        return { type: 'update', rects };
      }
      case 1: {
        const head = await this.take(5);
        await this.take(6 * head.readUInt16BE(3));
        return { type: 'colourmap' };
      }
      case 2:
        return { type: 'bell' };
      case 3: {
        const length = (await this.take(7)).readInt32BE(3);
        if (Math.abs(length) > MAX_CUT_TEXT) throw new Error(`cut text of ${Math.abs(length)} bytes is more than this viewer takes`);
        if (length >= 0) return { type: 'cut', text: (await this.take(length)).toString('latin1') };
        const body = await this.take(-length);
        const flags = body.readUInt32BE(0);
        if (flags & Clip.caps) {
          const sizes: number[] = [];
          for (let bit = 0, at = 4; bit < 16; bit++) if (flags & (1 << bit)) (sizes.push(body.readUInt32BE(at)), (at += 4));
          return { type: 'clipboard', flags, sizes };
        }
        if (flags & Clip.provide && flags & Clip.text) {
          // TigerVNC flushes its zlib stream without ending it.
          const data = inflateSync(body.subarray(4), { maxOutputLength: MAX_CUT_TEXT, finishFlush: zlibConstants.Z_SYNC_FLUSH });
          const size = data.readUInt32BE(0);
          const text = data.subarray(4, 4 + size).toString('utf8').replace(/\0$/, '').replace(/\r\n/g, '\n');
          return { type: 'clipboard', flags, text };
        }
        return { type: 'clipboard', flags };
      }
      default:
        throw new Error(`unexpected server message type ${type}`);
    }
  }

  /** Reads messages until one satisfies `wanted`; the ones before it are dropped. */
  async until<T extends ServerMessage>(bytesPerPixel: number, wanted: (m: ServerMessage) => m is T): Promise<T>;
  async until(bytesPerPixel: number, wanted: (m: ServerMessage) => boolean): Promise<ServerMessage>;
  async until(bytesPerPixel: number, wanted: (m: ServerMessage) => boolean): Promise<ServerMessage> {
    for (;;) {
      const message = await this.next(bytesPerPixel);
      if (wanted(message)) return message;
    }
  }

  /** One full-screen update: its size in bytes and whether it is more than one flat colour. */
  async frame(desktop: Pick<Desktop, 'width' | 'height' | 'bytesPerPixel'>): Promise<{ updateBytes: number; nonBlank: boolean }> {
    this.send(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0])); // SetEncodings: Raw only
    this.send(frameRequest(desktop.width, desktop.height));
    const header = await this.take(4);
    if (header[0] !== 0) throw new Error(`expected a FramebufferUpdate, got message type ${header[0]}`);
    const bpp = desktop.bytesPerPixel;
    let updateBytes = 0;
    let nonBlank = false;
    for (let i = 0, rects = header.readUInt16BE(2); i < rects; i++) {
      const rect = await this.take(12);
      if (rect.readInt32BE(8) !== 0) throw new Error(`unexpected encoding ${rect.readInt32BE(8)}`);
      const pixels = await this.take(rect.readUInt16BE(4) * rect.readUInt16BE(6) * bpp);
      updateBytes += pixels.length;
      const first = pixels.readUIntLE(0, bpp);
      for (let p = 0; p < pixels.length && !nonBlank; p += bpp) if (pixels.readUIntLE(p, bpp) !== first) nonBlank = true;
    }
    return { updateBytes, nonBlank };
  }
}

/** Encodings a viewer may announce with SetEncodings (pseudo-encodings are negative). */
export const Encoding = {
  Raw: 0,
  DesktopSize: -223,
  ExtendedDesktopSize: -308,
  /** TigerVNC's (and noVNC's) extended clipboard: UTF-8 text, announced and fetched on demand. */
  ExtendedClipboard: -1063131698,
} as const;

/** Flags of an extended clipboard message: formats in the low bits, one action in the top byte. */
export const Clip = {
  text: 1 << 0,
  caps: 1 << 24,
  request: 1 << 25,
  peek: 1 << 26,
  notify: 1 << 27,
  provide: 1 << 28,
} as const;

/** The most cut text a test viewer accepts in one message; a longer one is an error, not a buffer. */
const MAX_CUT_TEXT = 1 << 20;

export interface Screen {
  id: number;
  x: number;
  y: number;
  width: number;
  height: number;
  flags: number;
}

export type ServerMessage =
  | {
      type: 'update';
      rects: Array<{ x: number; y: number; width: number; height: number; encoding: number; screens?: Screen[] }>;
    }
  | { type: 'colourmap' }
  | { type: 'bell' }
  /** Plain ServerCutText: Latin-1 text. */
  | { type: 'cut'; text: string }
  /** Extended clipboard: the flags, and for `provide` the text (UTF-8), for `caps` the sizes. */
  | { type: 'clipboard'; flags: number; text?: string; sizes?: number[] };

/** ClientCutText in plain RFB: Latin-1, characters outside it cannot be sent. */
export function clientCutText(text: string): Buffer {
  const body = Buffer.from(text, 'latin1');
  const head = Buffer.alloc(8);
  head.writeUInt8(6, 0);
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** An extended clipboard message from the viewer: ClientCutText with a negative length. */
export function clientClipboard(flags: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt8(6, 0);
  head.writeInt32BE(-(4 + payload.length), 4);
  head.writeUInt32BE(flags >>> 0, 8);
  return Buffer.concat([head, payload]);
}

/** The viewer's `provide` of UTF-8 text: zlib of (length, text with CRLF line ends and a NUL). */
export function clipboardProvide(text: string): Buffer {
  const data = Buffer.concat([Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8'), Buffer.from([0])]);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(data.length);
  return clientClipboard(Clip.provide | Clip.text, deflateSync(Buffer.concat([size, data])));
}

/** SetDesktopSize: the whole desktop `width`×`height`, laid out as `screens`. */
export function setDesktopSize(width: number, height: number, screens: Screen[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt8(251, 0);
  head.writeUInt16BE(width, 2);
  head.writeUInt16BE(height, 4);
  head.writeUInt8(screens.length, 6);
  const bodies = screens.map((screen) => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(screen.id, 0);
    b.writeUInt16BE(screen.x, 4);
    b.writeUInt16BE(screen.y, 6);
    b.writeUInt16BE(screen.width, 8);
    b.writeUInt16BE(screen.height, 10);
    b.writeUInt32BE(screen.flags, 12);
    return b;
  });
  return Buffer.concat([head, ...bodies]);
}

export function setEncodings(encodings: readonly number[]): Buffer {
  const message = Buffer.alloc(4 + 4 * encodings.length);
  message.writeUInt8(2, 0);
  message.writeUInt16BE(encodings.length, 2);
  encodings.forEach((e, i) => message.writeInt32BE(e, 4 + 4 * i));
  return message;
}

/** A FramebufferUpdateRequest for the whole screen, not incremental unless asked. */
export function frameRequest(width: number, height: number, incremental = false): Buffer {
  const request = Buffer.alloc(10);
  request.writeUInt8(3, 0);
  request.writeUInt8(incremental ? 1 : 0, 1);
  request.writeUInt16BE(width, 6);
  request.writeUInt16BE(height, 8);
  return request;
}

/** Connects, reads the desktop and one full framebuffer update, and disconnects. */
export async function readDesktop(url: string, options: ConnectOptions | number = {}): Promise<Desktop & { updateBytes: number; nonBlank: boolean }> {
  const { viewer, desktop } = await RfbViewer.connect(url, options);
  try {
    return { ...desktop, ...(await viewer.frame(desktop)) };
  } finally {
    viewer.close();
  }
}

/**
 * The VNC server's side, for stand-ins of a session (the benchmark's echo server): offers
 * None and VNC authentication and accepts any answer.
 */
export async function serverHandshake(bytes: ByteReader, write: (b: Buffer) => void): Promise<void> {
  write(RFB_VERSION);
  const version = (await bytes.take(12)).toString('latin1');
  if (!version.startsWith('RFB 003.00')) throw new Error(`not an RFB viewer: ${JSON.stringify(version)}`);
  write(Buffer.from([2, SECURITY_NONE, SECURITY_VNC_AUTH]));
  const chosen = (await bytes.take(1))[0];
  if (chosen === SECURITY_VNC_AUTH) {
    write(randomBytes(16));
    await bytes.take(16); // not checked: the stand-in is about the relay, not the password
  } else if (chosen !== SECURITY_NONE) {
    throw new Error(`viewer chose security type ${chosen}`);
  }
  write(Buffer.alloc(4)); // SecurityResult: OK
}
