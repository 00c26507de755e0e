import WebSocket from 'ws';

/**
 * Speaks just enough RFB (VNC) over the relay to prove a desktop is really streaming:
 * reads the version banner, picks security "None", initialises, and asks for one
 * full framebuffer update. Resolves with what the server said.
 */
export async function readDesktop(url: string, timeoutMs = 15_000): Promise<{ banner: string; width: number; height: number; name: string; updateBytes: number; nonBlank: boolean }> {
  const ws = new WebSocket(url, ['binary']);
  ws.binaryType = 'nodebuffer';
  let buffer = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  ws.on('message', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    waiter?.();
  });
  const failed = new Promise<never>((_, reject) => {
    ws.on('error', reject);
    ws.on('close', (code, reason) => reject(new Error(`stream closed (${code} ${reason.toString()}) before the desktop was read`)));
    setTimeout(() => reject(new Error(`no desktop within ${timeoutMs} ms`)), timeoutMs).unref();
  });
  const take = async (n: number): Promise<Buffer> => {
    while (buffer.length < n) {
      await Promise.race([new Promise<void>((r) => (waiter = r)), failed]);
    }
    const out = buffer.subarray(0, n);
    buffer = buffer.subarray(n);
    return out;
  };

  try {
    const banner = (await take(12)).toString('latin1');
    if (!/^RFB 003\.00\d\n$/.test(banner)) throw new Error(`not an RFB banner: ${JSON.stringify(banner)}`);
    ws.send(Buffer.from('RFB 003.008\n'));
    const count = (await take(1))[0]!;
    if (count === 0) throw new Error('server refused the connection');
    const types = [...(await take(count))];
    if (!types.includes(1)) throw new Error(`security "None" not offered (offered ${types.join(',')})`);
    ws.send(Buffer.from([1]));
    const result = (await take(4)).readUInt32BE(0);
    if (result !== 0) throw new Error('security handshake failed');
    ws.send(Buffer.from([1])); // ClientInit: shared session
    const init = await take(24);
    const width = init.readUInt16BE(0);
    const height = init.readUInt16BE(2);
    const name = (await take(init.readUInt32BE(20))).toString('utf8');
    // SetEncodings: Raw only, so pixel bytes arrive as they are.
    ws.send(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]));
    // FramebufferUpdateRequest, full screen, not incremental.
    const request = Buffer.alloc(10);
    request.writeUInt8(3, 0);
    request.writeUInt8(0, 1);
    request.writeUInt16BE(width, 6);
    request.writeUInt16BE(height, 8);
    ws.send(request);
    const header = await take(4);
    if (header[0] !== 0) throw new Error(`expected a FramebufferUpdate, got message type ${header[0]}`);
    const rects = header.readUInt16BE(2);
    const bpp = init.readUInt8(4) / 8;
    let updateBytes = 0;
    let nonBlank = false;
    for (let i = 0; i < rects; i++) {
      const rect = await take(12);
      const w = rect.readUInt16BE(4);
      const h = rect.readUInt16BE(6);
      const encoding = rect.readInt32BE(8);
      if (encoding !== 0) throw new Error(`unexpected encoding ${encoding}`);
      const pixels = await take(w * h * bpp);
      updateBytes += pixels.length;
      // A desktop with an app on it is not one flat colour.
      const first = pixels.readUInt32LE(0);
      for (let p = 0; p < pixels.length && !nonBlank; p += bpp) if (pixels.readUInt32LE(p) !== first) nonBlank = true;
    }
    return { banner: banner.trim(), width, height, name, updateBytes, nonBlank };
  } finally {
    ws.terminate();
  }
}
