/**
 * Sortie's StreamRelay class alone, on a bare node:http server: no Fastify, database,
 * session service or logger output. Same protocol as sortie-child.ts. Comparing it with
 * the full server (`--relay-only`) separates what the relay code costs from what the rest
 * of the Sortie process adds around it.
 *
 * Env: BENCH_WS_PORT, BENCH_SORTIE_SRC (as for sortie-child.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { watchGcPauses } from './gc-pauses.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const src = process.env.BENCH_SORTIE_SRC ?? path.resolve(import.meta.dirname, '../../server/src');
const { StreamRelay } = (await import(pathToFileURL(path.join(src, `stream/relay${ext}`)).href)) as typeof import('../../server/src/stream/relay.js');

const gc = watchGcPauses();

const endpoint = { host: '127.0.0.1', port: Number(process.env.BENCH_WS_PORT) };
// A secret is harmless for a relay that only pipes, and needed by one that answers the VNC challenge.
const relay = new StreamRelay({ logger: pino({ level: 'error' }), resolve: async () => ({ ok: true, endpoint, secret: 'bench-secret' }) });
const server = http.createServer((_req, res) => res.writeHead(404).end());
server.on('upgrade', (req, socket, head) => relay.handleUpgrade(req, socket, head));
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port, pid: process.pid }));
process.on('message', (msg: { id: number; type: string }) => {
  if (msg.type === 'cpu') process.send!({ id: msg.id, cpu: process.cpuUsage() });
  else if (msg.type === 'gc') process.send!({ id: msg.id, gc: gc.take() });
  else if (msg.type === 'stop') {
    relay.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  }
});
process.on('disconnect', () => process.exit(0));
