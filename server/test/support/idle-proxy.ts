import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';

export interface IdleProxy {
  /** http://127.0.0.1:port, the way in. */
  url: string;
  /**
   * Connections taken and cut for silence, all of them and those that carried a session
   * stream (`/ws/…`); an idle HTTP keep-alive connection being cut is normal.
   */
  stats: () => { accepted: number; cut: number; open: number; streams: number; streamsCut: number };
  close: () => Promise<void>;
}

/**
 * A TCP proxy in front of `target` that cuts any connection on which nothing has passed,
 * in either direction, for `idleMs`: what nginx (proxy_read_timeout 60 s), many load
 * balancers and corporate proxies do to a WebSocket that stays silent.
 */
export async function startIdleProxy(target: { host: string; port: number }, idleMs: number): Promise<IdleProxy> {
  let accepted = 0;
  let cut = 0;
  let streams = 0;
  let streamsCut = 0;
  const open = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    accepted++;
    const outbound = net.connect(target.port, target.host);
    open.add(inbound);
    let timer: NodeJS.Timeout | undefined;
    let stream = false;
    inbound.once('data', (first: Buffer) => {
      stream = first.subarray(0, 8).toString('latin1') === 'GET /ws/';
      if (stream) streams++;
    });
    const touch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        cut++;
        if (stream) streamsCut++;
        inbound.destroy();
        outbound.destroy();
      }, idleMs);
    };
    const end = () => {
      clearTimeout(timer);
      open.delete(inbound);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('data', touch);
    outbound.on('data', touch);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    for (const socket of [inbound, outbound]) {
      socket.on('close', end);
      socket.on('error', end);
    }
    touch();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ accepted, cut, open: open.size, streams, streamsCut }),
    close: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
