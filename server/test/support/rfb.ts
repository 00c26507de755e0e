import WebSocket from 'ws';

export interface Desktop {
  banner: string;
  width: number;
  height: number;
  name: string;
  bytesPerPixel: number;
}

/**
 * A minimal VNC viewer over a WebSocket: enough RFB to prove a desktop is really there.
 * `connect` does the handshake (version, security "None", ClientInit/ServerInit);
 * `frame` asks for one full framebuffer update in Raw encoding.
 */
export class RfbViewer {
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, data]);
      this.waiter?.();
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      this.waiter?.();
    };
    ws.on('error', fail);
    ws.on('close', (code, reason) => fail(new Error(`stream closed (${code} ${reason.toString()})`)));
  }

  static async connect(url: string, timeoutMs = 15_000): Promise<{ viewer: RfbViewer; desktop: Desktop }> {
    const viewer = new RfbViewer(new WebSocket(url, ['binary']));
    const timer = setTimeout(() => viewer.ws.terminate(), timeoutMs);
    try {
      return { viewer, desktop: await viewer.handshake() };
    } catch (err) {
      viewer.ws.terminate();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.ws.terminate();
  }

  /** One full-screen update: its size in bytes and whether it is more than one flat colour. */
  async frame(desktop: Desktop): Promise<{ updateBytes: number; nonBlank: boolean }> {
    this.ws.send(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0])); // SetEncodings: Raw only
    const request = Buffer.alloc(10);
    request.writeUInt8(3, 0);
    request.writeUInt16BE(desktop.width, 6);
    request.writeUInt16BE(desktop.height, 8);
    this.ws.send(request);
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

  private async handshake(): Promise<Desktop> {
    const banner = (await this.take(12)).toString('latin1');
    if (!/^RFB 003\.00\d\n$/.test(banner)) throw new Error(`not an RFB banner: ${JSON.stringify(banner)}`);
    this.ws.send(Buffer.from('RFB 003.008\n'));
    const count = (await this.take(1))[0]!;
    if (count === 0) throw new Error('the server refused the connection');
    const types = [...(await this.take(count))];
    if (!types.includes(1)) throw new Error(`security "None" not offered (offered ${types.join(',')})`);
    this.ws.send(Buffer.from([1]));
    if ((await this.take(4)).readUInt32BE(0) !== 0) throw new Error('security handshake failed');
    this.ws.send(Buffer.from([1])); // ClientInit: shared
    const init = await this.take(24);
    const name = (await this.take(init.readUInt32BE(20))).toString('utf8');
    return { banner: banner.trim(), width: init.readUInt16BE(0), height: init.readUInt16BE(2), name, bytesPerPixel: init.readUInt8(4) / 8 };
  }

  private async take(n: number): Promise<Buffer> {
    while (this.buffer.length < n) {
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => (this.waiter = r));
    }
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }
}

/** Connects, reads the desktop and one full framebuffer update, and disconnects. */
export async function readDesktop(url: string, timeoutMs = 15_000): Promise<Desktop & { updateBytes: number; nonBlank: boolean }> {
  const { viewer, desktop } = await RfbViewer.connect(url, timeoutMs);
  try {
    return { ...desktop, ...(await viewer.frame(desktop)) };
  } finally {
    viewer.close();
  }
}
