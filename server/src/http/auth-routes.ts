import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuthService, IssuedTokens } from '../auth/auth-service.js';
import type { OidcClient } from '../auth/oidc.js';
import type { AuthConfig } from '../config/config.js';
import { UnauthorizedError } from '../errors.js';
import { ACCESS_COOKIE, principal, REFRESH_COOKIE } from './auth-hook.js';
import { parseInput } from './parse-input.js';
import { PUBLIC, SIGNED_IN } from './access-gate.js';

const loginBody = z.object(
  {
    username: z.string({ error: 'username is required' }).trim().min(1, 'username is required'),
    password: z.string({ error: 'password is required' }).min(1, 'password is required'),
  },
  { error: 'The body must be a JSON object with username and password' },
);

const refreshBody = z.object({ refresh_token: z.string().optional() }).optional();

/** Refresh cookies go only to the auth routes that use them. */
const REFRESH_PATH = '/api/auth';

export function authRoutes(app: FastifyInstance, auth: AuthService, config: AuthConfig, oidc: OidcClient | undefined): void {
  const cookieBase = (request: FastifyRequest) => ({ httpOnly: true, sameSite: 'lax' as const, secure: isHttps(request, config) });

  const sendTokens = (request: FastifyRequest, reply: FastifyReply, issued: IssuedTokens) => {
    reply.setCookie(ACCESS_COOKIE, issued.accessToken, { ...cookieBase(request), path: '/', expires: issued.accessExpiresAt });
    reply.setCookie(REFRESH_COOKIE, issued.refreshToken, { ...cookieBase(request), path: REFRESH_PATH, expires: issued.refreshExpiresAt });
  };
  const body = (issued: IssuedTokens) => ({
    user: issued.user,
    access_token: issued.accessToken,
    expires_at: issued.accessExpiresAt.toISOString(),
    refresh_token: issued.refreshToken,
  });

  app.get('/api/auth/config', PUBLIC, async () => ({
    enabled: config.enabled,
    local: config.enabled,
    oidc: { enabled: config.enabled && oidc !== undefined, name: config.oidc?.name ?? '' },
  }));

  app.post('/api/auth/login', PUBLIC, async (request, reply) => {
    const input = parseInput(loginBody, request.body);
    // request.ip honours X-Forwarded-For only as far as the server trusts proxies.
    const issued = await auth.login(input.username, input.password, request.ip);
    sendTokens(request, reply, issued);
    return body(issued);
  });

  app.post('/api/auth/refresh', PUBLIC, async (request, reply) => {
    const token = parseInput(refreshBody, request.body)?.refresh_token ?? request.cookies[REFRESH_COOKIE];
    if (!token) throw new UnauthorizedError('No refresh token; sign in again');
    const issued = await auth.refresh(token);
    sendTokens(request, reply, issued);
    return body(issued);
  });

  app.post('/api/auth/logout', SIGNED_IN, async (request, reply) => {
    await auth.logout(principal(request));
    reply.clearCookie(ACCESS_COOKIE, { path: '/' }).clearCookie(REFRESH_COOKIE, { path: REFRESH_PATH });
    return reply.status(204).send();
  });

  app.get('/api/auth/me', SIGNED_IN, async (request) => ({ user: await auth.me(principal(request)), auth_enabled: config.enabled }));

  if (!oidc) return;

  app.get<{ Querystring: { return_to?: string } }>('/api/auth/oidc/login', PUBLIC, async (request, reply) => {
    const returnTo = safeReturnTo(request.query.return_to);
    const { url, state } = await oidc.start(redirectUri(request, config), returnTo);
    reply.setCookie(OIDC_COOKIE, state, { ...cookieBase(request), path: '/api/auth/oidc', maxAge: 600 });
    return reply.redirect(url);
  });

  app.get('/api/auth/oidc/callback', PUBLIC, async (request, reply) => {
    reply.clearCookie(OIDC_COOKIE, { path: '/api/auth/oidc' });
    try {
      const currentUrl = new URL(request.url, redirectUri(request, config));
      const { identity, returnTo } = await oidc.finish(currentUrl, request.cookies[OIDC_COOKIE]);
      sendTokens(request, reply, await auth.loginOidc(identity, request.ip));
      return reply.redirect(returnTo);
    } catch (err) {
      request.log.warn({ err }, 'OIDC sign-in failed');
      const message = err instanceof Error ? err.message : 'Sign-in failed';
      // Not audited: anyone can call back without having signed in at the provider, for
      // free. A disabled account, which the provider did vouch for, is recorded by loginOidc.
      return reply.redirect(`/#/signin?error=${encodeURIComponent(message)}`);
    }
  });
}

const OIDC_COOKIE = 'sortie_oidc';

/** Only paths on this site, so the sign-in cannot be turned into an open redirect. */
function safeReturnTo(value: string | undefined): string {
  return value && value.startsWith('/') && !value.startsWith('//') && !value.includes('\\') ? value : '/';
}

function redirectUri(request: FastifyRequest, config: AuthConfig): string {
  const base = config.publicUrl ?? `${request.protocol}://${request.host}`;
  return `${base}/api/auth/oidc/callback`;
}

function isHttps(request: FastifyRequest, config: AuthConfig): boolean {
  return config.publicUrl ? config.publicUrl.startsWith('https:') : request.protocol === 'https';
}
