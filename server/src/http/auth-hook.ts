import type { IncomingHttpHeaders } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OPEN_ACCESS_PRINCIPAL, type AuthService } from '../auth/auth-service.js';
import type { Principal } from '../auth/principal.js';
import { ForbiddenError } from '../errors.js';
import type { OriginPolicy } from './origin-policy.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Reachable without signing in (sign-in itself, the auth settings). */
    public?: boolean;
    /** Only for admins. */
    admin?: boolean;
  }
}

export const ACCESS_COOKIE = 'sortie_access';
export const REFRESH_COOKIE = 'sortie_refresh';

export interface Authenticator {
  /** The principal behind a request's headers (cookie or bearer token); throws UnauthorizedError. */
  principalOf(headers: IncomingHttpHeaders): Promise<Principal>;
}

export function authenticator(auth: AuthService, enabled: boolean): Authenticator {
  return {
    async principalOf(headers) {
      if (!enabled) return OPEN_ACCESS_PRINCIPAL;
      return auth.authenticate(accessTokenOf(headers));
    },
  };
}

function accessTokenOf(headers: IncomingHttpHeaders): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '');
  if (bearer) return bearer[1];
  return headers.cookie ? fastifyCookie.parse(headers.cookie)[ACCESS_COOKIE] : undefined;
}

/**
 * Every /api route needs a signed-in principal unless it is marked public; admin routes
 * need an admin. Writes from a foreign browser origin are refused before anything else.
 */
export function installAuth(app: FastifyInstance, authn: Authenticator, origins: OriginPolicy): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/api/')) return;
    if (!['GET', 'HEAD', 'OPTIONS'].includes(request.method) && !origins.allows(request.headers.origin, request.headers.host)) {
      throw new ForbiddenError(`Requests from ${request.headers.origin} are not allowed; add it to SORTIE_ALLOWED_ORIGINS if it should be`);
    }
    const config = request.routeOptions.config;
    if (config.public || request.is404) return;
    request.principal = await authn.principalOf(request.headers);
    if (config.admin && request.principal.role !== 'admin') throw new ForbiddenError('This needs an administrator');
  });
}

/** The principal of a request that passed the hook above. */
export function principal(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error(`route ${request.routeOptions.url} used principal() without authentication`);
  return request.principal;
}
