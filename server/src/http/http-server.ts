import fastifyCookie from '@fastify/cookie';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AuthService } from '../auth/auth-service.js';
import type { OidcClient } from '../auth/oidc.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import type { AuthConfig } from '../config/config.js';
import type { SessionService } from '../sessions/session-service.js';
import type { StreamRelay } from '../stream/relay.js';
import { adminRoutes } from './admin-routes.js';
import { appRoutes } from './app-routes.js';
import { installAuth, type Authenticator } from './auth-hook.js';
import { authRoutes } from './auth-routes.js';
import { installErrorHandling } from './errors.js';
import { healthRoutes } from './health-routes.js';
import type { OriginPolicy } from './origin-policy.js';
import { sessionRoutes } from './session-routes.js';
import { webUi } from './web-ui.js';

export interface HttpServerDeps {
  logger: Logger;
  catalog: CatalogService;
  sessions: SessionService;
  auth: AuthService;
  authConfig: AuthConfig;
  authenticator: Authenticator;
  origins: OriginPolicy;
  oidc: OidcClient | undefined;
  relay: StreamRelay;
  webDir: string;
  isReady: () => Promise<boolean>;
}

/** Small JSON bodies only: the largest legitimate one is an app definition. */
const BODY_LIMIT = 16 * 1024;

export async function buildHttpServer(deps: HttpServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // The UI polls session status; a log line per poll would drown everything else.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    // Behind an ingress, X-Forwarded-Proto/Host say how people reach Sortie (cookies' Secure flag, OIDC redirects).
    trustProxy: true,
  });
  await app.register(fastifyCookie);
  const spaFallback = await webUi(app, deps.webDir);
  installErrorHandling(app, { spaFallback });
  installAuth(app, deps.authenticator, deps.origins);
  healthRoutes(app, deps.isReady);
  authRoutes(app, deps.auth, deps.authConfig, deps.oidc);
  adminRoutes(app, deps.auth);
  appRoutes(app, deps.catalog);
  sessionRoutes(app, deps.sessions);
  app.server.on('upgrade', (req, socket, head) => deps.relay.handleUpgrade(req, socket, head));
  return app;
}
