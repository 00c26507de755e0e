import WebSocket from 'ws';
import { vncAuthResponse } from '../../src/stream/rfb-handshake.js';

export interface DesktopRead {
  banner: string;
  /** Security types the server offered: 2 alone means it insists on the VNC password. */
  offered: number[];
  /** Whether the password was accepted (undefined when none was tried). */
  accepted?: boolean;
  width?: number;
  height?: number;
  nonBlank?: boolean;
}

/**
 * Talks straight to a session's websockify, as something that bypassed Sortie would: reads
 * the banner and the offered security types, then (with a password) answers the VNC
 * challenge and reads one full framebuffer to see that an app is drawn.
 */
export async function readDesktop(url: string, password?: string, timeoutMs = 15_000): Promise<DesktopRead> {
  const ws = new WebSocket(url, ['binary']);
  ws.binaryType = 'nodebuffer';
  let buffer = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  ws.on('message', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    wake?.();
  });
  const failed = new Promise<never>((_, reject) => {
    ws.on('error', reject);
    ws.on('close', (code) => reject(new Error(`websockify closed the connection (${code})`)));
    setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref();
  });
  failed.catch(() => undefined);
  const take = async (n: number): Promise<Buffer> => {
    while (buffer.length < n) await Promise.race([new Promise<void>((r) => (wake = r)), failed]);
    const out = buffer.subarray(0, n);
    buffer = buffer.subarray(n);
    return out;
  };

  try {
    const banner = (await take(12)).toString('latin1');
    ws.send(Buffer.from('RFB 003.008\n'));
    const offered = [...(await take((await take(1))[0]!))];
    if (password === undefined) return { banner: banner.trim(), offered };

    ws.send(Buffer.from([2]));
    ws.send(vncAuthResponse(await take(16), password));
    if ((await take(4)).readUInt32BE(0) !== 0) return { banner: banner.trim(), offered, accepted: false };

    ws.send(Buffer.from([1])); // ClientInit: shared
    const init = await take(24);
    const width = init.readUInt16BE(0);
    const height = init.readUInt16BE(2);
    await take(init.readUInt32BE(20)); // desktop name
    ws.send(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0])); // SetEncodings: Raw
    const request = Buffer.alloc(10);
    request.writeUInt8(3, 0);
    request.writeUInt16BE(width, 6);
    request.writeUInt16BE(height, 8);
    ws.send(request);
    const header = await take(4);
    if (header[0] !== 0) throw new Error(`expected a FramebufferUpdate, got message type ${header[0]}`);
    const bpp = init.readUInt8(4) / 8;
    let nonBlank = false;
    for (let i = 0, rects = header.readUInt16BE(2); i < rects; i++) {
      const rect = await take(12);
      const pixels = await take(rect.readUInt16BE(4) * rect.readUInt16BE(6) * bpp);
      const first = pixels.readUInt32LE(0);
      for (let p = 0; p < pixels.length && !nonBlank; p += bpp) if (pixels.readUInt32LE(p) !== first) nonBlank = true;
    }
    return { banner: banner.trim(), offered, accepted: true, width, height, nonBlank };
  } finally {
    ws.terminate();
  }
}
