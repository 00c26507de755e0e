import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/**
 * The client address of a raw request (a WebSocket upgrade, which Fastify does not see),
 * decided exactly as Fastify decides `request.ip` for the API with the same
 * SORTIE_TRUSTED_PROXIES: the same library, the same comma-separated list. The peer's own
 * address unless it is a trusted proxy, then the last X-Forwarded-For entry not added by one.
 */
export function clientAddressOf(trustedProxies: string): (req: IncomingMessage) => string {
  const trust = proxyAddr.compile(trustedProxies.split(',').map((entry) => entry.trim()));
  return (req) => proxyAddr(req, trust);
}
