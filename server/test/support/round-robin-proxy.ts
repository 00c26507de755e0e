import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';

export interface RoundRobinProxy {
  /** http://127.0.0.1:port, the one address the browser knows. */
  url: string;
  /** Which backend (by index) each connection went to, in order; /ws/ ones marked. */
  log: { backend: number; stream: boolean }[];
  close: () => Promise<void>;
}

/**
 * A TCP proxy that hands each new connection to the next of `backends` in turn, as a
 * Kubernetes Service or a load balancer spreads connections over replicas. A backend that
 * refuses the connection (stopped listening) is skipped for the next, as a load balancer
 * with health checks would; one that accepts it gets it, draining or not.
 */
export async function startRoundRobinProxy(backends: { host: string; port: number }[]): Promise<RoundRobinProxy> {
  let next = 0;
  const log: RoundRobinProxy['log'] = [];
  const open = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    open.add(inbound);
    inbound.pause();
    const connect = (tries: number) => {
      const index = next++ % backends.length;
      const outbound = net.connect(backends[index]!.port, backends[index]!.host);
      let connected = false;
      outbound.once('error', () => {
        if (connected) return;
        if (tries + 1 < backends.length && !inbound.destroyed) connect(tries + 1);
        else inbound.destroy();
      });
      outbound.once('connect', () => {
        connected = true;
        open.add(outbound);
        const entry = { backend: index, stream: false };
        log.push(entry);
        inbound.once('data', (first: Buffer) => (entry.stream = first.subarray(0, 8).toString('latin1') === 'GET /ws/'));
        inbound.pipe(outbound);
        outbound.pipe(inbound);
        inbound.resume();
        const end = () => {
          open.delete(inbound);
          open.delete(outbound);
          inbound.destroy();
          outbound.destroy();
        };
        for (const socket of [inbound, outbound]) {
          socket.on('close', end);
          socket.on('error', end);
        }
      });
    };
    inbound.on('error', () => inbound.destroy());
    inbound.once('close', () => open.delete(inbound));
    connect(0);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
