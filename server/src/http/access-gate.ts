import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import { ForbiddenError } from '../errors.js';
import type { RequestGate } from './request-gate.js';

/**
 * Who may call a route. Every route says it explicitly: a route without a decision stops
 * Sortie at start-up, so a route added later cannot be open by omission.
 */
export type Access = 'public' | 'user' | 'admin' | 'metrics';
const ACCESS_LEVELS: readonly Access[] = ['public', 'user', 'admin', 'metrics'];

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

/** Route options to spread into a route's definition: `app.get(url, ADMIN, handler)`. */
export const PUBLIC = { config: { access: 'public' } } as const;
export const SIGNED_IN = { config: { access: 'user' } } as const;
export const ADMIN = { config: { access: 'admin' } } as const;
/** Prometheus scrapers only: the Bearer token SORTIE_METRICS_TOKEN, not a user's sign-in. */
export const METRICS_SCRAPER = { config: { access: 'metrics' } } as const;

export interface RouteInfo {
  method: string;
  url: string;
  access: Access | undefined;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const ALL_METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * Every registered route, with the access it declared, and a router of our own over the
 * same paths so that a known path asked with the wrong method answers 405 with `Allow`.
 * find-my-way is the router Fastify itself uses, with Fastify's defaults, so both agree on
 * which path a request names (percent-decoding included).
 */
export class RouteTable {
  private readonly routes: RouteOptions[] = [];
  private readonly router = FindMyWay();

  add(route: RouteOptions): void {
    this.routes.push(route);
    for (const method of [route.method].flat()) {
      try {
        this.router.on(method.toUpperCase() as HTTPMethod, route.url, () => undefined);
      } catch {
        // Fastify already refused a duplicate; nothing to add here.
      }
    }
  }

  /** Read late: plugins may complete a route's config after it was added. */
  list(): RouteInfo[] {
    return this.routes.flatMap((route) => [route.method].flat().map((method) => ({ method, url: route.url, access: route.config?.access })));
  }

  /** The methods some route accepts at this concrete path (empty when no route has it). */
  methodsAt(urlPath: string): HTTPMethod[] {
    return ALL_METHODS.filter((method) => this.router.find(method, urlPath) !== null);
  }

  /** Throws naming every route that did not say who may call it. */
  assertEveryRouteDecided(): void {
    const undecided = this.list().filter((r) => !r.access || !ACCESS_LEVELS.includes(r.access));
    if (undecided.length === 0) return;
    const names = undecided.map((r) => `${r.method} ${r.url}`).join(', ');
    throw new Error(`routes without an access decision (give each config.access 'public', 'user', 'admin' or 'metrics'): ${names}`);
  }
}

/**
 * The one place that decides whether a request may reach its handler, by the route that
 * matched (never by the raw URL, which can spell the same route many ways): first where it
 * comes from (the request gate: Host when sign-in is off, Origin for writes), then the
 * route's declared access: public, any signed-in principal, or admins only. Requests that
 * matched no route reach the not-found handler, which serves no data.
 */
export function installAccessGate(app: FastifyInstance, gate: RequestGate): RouteTable {
  const table = new RouteTable();
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => table.add(route));
  app.addHook('onReady', async () => table.assertEveryRouteDecided());
  app.addHook('onRequest', async (request) => {
    gate.checkSource(request.headers, WRITE_METHODS.has(request.method));
    if (request.is404) return;
    await admit(request, gate);
  });
  return table;
}

async function admit(request: FastifyRequest, gate: RequestGate): Promise<void> {
  // assertEveryRouteDecided() makes a missing decision impossible; if one slips through, it is not public.
  const access = request.routeOptions.config.access ?? 'admin';
  if (access === 'public') return;
  if (access === 'metrics') return gate.checkMetricsToken(request.headers);
  // The address comes with the principal so that what the caller does is audited with it.
  request.principal = { ...(await gate.principal(request.headers)), address: request.ip };
  if (access === 'admin' && request.principal.role !== 'admin') throw new ForbiddenError('This needs an administrator');
}
