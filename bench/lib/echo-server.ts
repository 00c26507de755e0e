import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { ByteReader, serverHandshake } from '../../server/test/support/rfb.js';

/**
 * The stand-in for a session's VNC server, which websockify targets: it opens each
 * connection like a VNC server (serverHandshake: Sortie's relay may take part in the opening
 * of RFB before it pipes bytes), then echoes every byte.
 * Runs inside the bench process (`startEchoServer`) or as its own process (run this file
 * with an IPC channel: it reports `{port}` and answers `{type:'cpu'}`).
 */
export async function startEchoServer(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
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

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.send) {
  const echo = await startEchoServer(Number(process.env.ECHO_PORT ?? 0));
  process.on('message', (msg: { id: number; type: string }) => {
    if (msg.type === 'cpu') process.send!({ id: msg.id, cpu: process.cpuUsage() });
    else if (msg.type === 'stop') void echo.close().then(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ port: echo.port, pid: process.pid });
}
