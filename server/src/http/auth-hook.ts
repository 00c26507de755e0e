import type { IncomingHttpHeaders } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyRequest } from 'fastify';
import { OPEN_ACCESS_PRINCIPAL, type AuthService } from '../auth/auth-service.js';
import type { Principal } from '../auth/principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the access gate (access-gate.ts) on routes that are not public. */
    principal: Principal | null;
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

/** The principal of a request that passed the access gate on a non-public route. */
export function principal(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error(`route ${request.routeOptions.url} used principal() without authentication`);
  return request.principal;
}
