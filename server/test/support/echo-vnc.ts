import net from 'node:net';
import { ByteReader, serverHandshake } from './rfb.js';

/**
 * A stand-in for a session's VNC server, which websockify targets: it opens each connection
 * like a VNC server (None or VNC authentication, any answer accepted: Sortie's relay may take
 * part in the opening of RFB before it pipes bytes), then echoes every byte.
 * The tests that count relayed bytes and the relay benchmark both stream through it.
 */
export async function startEchoVnc(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const queue = new ByteReader();
    const onData = (chunk: Buffer) => queue.push(chunk);
    socket.on('data', onData);
    serverHandshake(queue, (b) => socket.write(b)).then(
      () => {
        socket.off('data', onData);
        const early = queue.rest();
        if (early.length > 0) socket.write(early);
        socket.pipe(socket);
      },
      () => socket.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
