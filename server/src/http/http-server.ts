import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AppRepository } from '../catalog/app-repository.js';
import type { SessionService } from '../sessions/session-service.js';
import type { StreamRelay } from '../stream/relay.js';
import { appRoutes } from './app-routes.js';
import { installErrorHandling } from './errors.js';
import { healthRoutes } from './health-routes.js';
import { sessionRoutes } from './session-routes.js';
import { webUi } from './web-ui.js';

export interface HttpServerDeps {
  logger: Logger;
  apps: AppRepository;
  sessions: SessionService;
  relay: StreamRelay;
  webDir: string;
  isReady: () => Promise<boolean>;
}

/** Small JSON bodies only: the largest legitimate one is a session request. */
const BODY_LIMIT = 16 * 1024;

export async function buildHttpServer(deps: HttpServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // The UI polls session status; a log line per poll would drown everything else.
    disableRequestLogging: true,
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
  });
  const spaFallback = await webUi(app, deps.webDir);
  installErrorHandling(app, { spaFallback });
  healthRoutes(app, deps.isReady);
  appRoutes(app, deps.apps);
  sessionRoutes(app, deps.sessions);
  app.server.on('upgrade', (req, socket, head) => deps.relay.handleUpgrade(req, socket, head));
  return app;
}
