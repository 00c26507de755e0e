import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuthService } from '../auth/auth-service.js';
import type { OidcClient } from '../auth/oidc.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import type { AuthConfig } from '../config/config.js';
import type { Metrics } from '../metrics/metrics.js';
import { recordingRoutes } from '../recordings/recording-routes.js';
import type { RecordingService } from '../recordings/recording-service.js';
import type { SessionFiles } from '../sessions/session-files.js';
import type { UserHomeService } from '../sessions/user-homes.js';
import type { SessionService } from '../sessions/session-service.js';
import type { StreamRelay } from '../stream/relay.js';
import type { SessionEvents } from './session-events.js';
import { adminRoutes } from './admin-routes.js';
import { appRoutes } from './app-routes.js';
import { auditRoutes } from './audit-routes.js';
import { installAccessGate, METRICS_SCRAPER, type RouteTable } from './access-gate.js';
import { authRoutes } from './auth-routes.js';
import { installErrorHandling } from './errors.js';
import { fileRoutes } from './file-routes.js';
import { healthRoutes, type Readiness } from './health-routes.js';
import { metricsRoute } from './metrics-routes.js';
import type { RequestGate } from './request-gate.js';
import { sessionRoutes } from './session-routes.js';
import { webUi } from './web-ui.js';

export interface HttpServerDeps {
  logger: Logger;
  catalog: CatalogService;
  sessions: SessionService;
  files: SessionFiles;
  homes: UserHomeService;
  audit: AuditLog;
  auth: AuthService;
  authConfig: AuthConfig;
  gate: RequestGate;
  oidc: OidcClient | undefined;
  relay: StreamRelay;
  /** GET /api/events, live session changes. */
  events: SessionEvents;
  /** /api/admin/recordings. */
  recordings: RecordingService;
  webDir: string;
  trustedProxies: string;
  metrics: Metrics;
  /** Serve `GET /metrics` on this port, to the SORTIE_METRICS_TOKEN bearer. */
  serveMetrics: boolean;
  isReady: () => Promise<Readiness>;
}

/** Small JSON bodies only: the largest legitimate one is an app definition. */
const BODY_LIMIT = 16 * 1024;

export interface HttpServer {
  app: FastifyInstance;
  /** Every route and who may call it (the access tests walk it). */
  routes: RouteTable;
}

export async function buildHttpServer(deps: HttpServerDeps): Promise<HttpServer> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // The UI polls session status; a log line per poll would drown everything else.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    // Behind an ingress, X-Forwarded-Proto/Host say how people reach Sortie (cookies' Secure
    // flag, OIDC redirects) and X-Forwarded-For who is signing in (rate limits). Believed only
    // from the proxies an operator names: anyone else could claim any address.
    trustProxy: deps.trustedProxies,
  });
  await app.register(fastifyCookie);
  await app.register(fastifyHelmet, securityHeaders(deps.authConfig.publicUrl));
  const routes = installAccessGate(app, deps.gate);
  app.addHook('onResponse', async (request, reply) => deps.metrics.httpResponse(request.method, request.routeOptions.url, reply.statusCode));
  const spaIndex = await webUi(app, deps.webDir);
  installErrorHandling(app, { spaIndex, routes });
  healthRoutes(app, deps.isReady);
  if (deps.serveMetrics) metricsRoute(app, deps.metrics, METRICS_SCRAPER);
  authRoutes(app, deps.auth, deps.authConfig, deps.oidc);
  adminRoutes(app, deps.auth, deps.homes);
  auditRoutes(app, deps.audit);
  recordingRoutes(app, deps.recordings);
  appRoutes(app, deps.catalog);
  sessionRoutes(app, deps.sessions);
  deps.events.routes(app);
  await fileRoutes(app, deps.files);
  app.server.on('upgrade', (req, socket, head) => deps.relay.handleUpgrade(req, socket, head));
  return { app, routes };
}

/**
 * Headers for every response: no framing (clickjacking the Launch and End buttons), no
 * MIME sniffing, no referrer, and a CSP under which the UI and noVNC run: scripts and
 * connections (the WebSocket included) only from Sortie itself; inline styles because
 * React and noVNC set element styles. HSTS only when Sortie is known to be served over
 * HTTPS, and no upgrade-insecure-requests, which would break a plain-HTTP install.
 */
function securityHeaders(publicUrl: string | undefined) {
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' as const },
    referrerPolicy: { policy: 'no-referrer' as const },
    strictTransportSecurity: publicUrl?.startsWith('https:') ? { maxAge: 31_536_000 } : false,
  };
}
