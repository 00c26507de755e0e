import { networkInterfaces } from 'node:os';

/**
 * Which Host header names this server. With sign-in off, anyone who reaches the port acts
 * as an admin, and a web page on another name can reach it through the visitor's browser
 * by pointing its own DNS name at 127.0.0.1 (DNS rebinding): its requests then carry a
 * matching Origin and Host, so only the Host's *name* gives it away. We answer only to
 * localhost, the addresses we listen on, SORTIE_PUBLIC_URL and SORTIE_ALLOWED_ORIGINS.
 */
export class HostPolicy {
  private readonly names: Set<string>;

  constructor(options: { listenHost: string; publicUrl: string | undefined; allowedOrigins: string[] }) {
    const names = ['localhost', '127.0.0.1', '::1'];
    const wildcard = options.listenHost === '0.0.0.0' || options.listenHost === '::';
    if (wildcard) {
      for (const addresses of Object.values(networkInterfaces())) names.push(...(addresses ?? []).map((a) => a.address));
    } else {
      names.push(options.listenHost);
    }
    for (const url of [options.publicUrl, ...options.allowedOrigins]) if (url) names.push(new URL(url).hostname);
    this.names = new Set(names.map(normalize));
  }

  allows(host: string | undefined): boolean {
    if (!host) return false;
    return this.names.has(normalize(hostnameOf(host)));
  }

  refusal(host: string | undefined): string {
    return (
      `Sortie does not answer to the host name "${host ?? ''}" while sign-in is off (SORTIE_AUTH=disabled); ` +
      'use localhost or one of its addresses, or set SORTIE_PUBLIC_URL to the name people use'
    );
  }
}

/** "example.com:8080" → "example.com", "[::1]:8080" → "::1". */
function hostnameOf(host: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed) return bracketed[1]!;
  return host.replace(/:\d+$/, '');
}

function normalize(name: string): string {
  return name.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}
