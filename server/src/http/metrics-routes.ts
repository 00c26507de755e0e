import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import { installAccessGate, METRICS_SCRAPER, PUBLIC } from './access-gate.js';
import { installErrorHandling } from './errors.js';
import type { RequestGate } from './request-gate.js';

/** `GET /metrics`: Prometheus text, computed at each scrape. */
export function metricsRoute(app: FastifyInstance, metrics: Metrics, access: typeof METRICS_SCRAPER | typeof PUBLIC): void {
  app.get('/metrics', { config: { access: access.config.access } }, async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });
}

/**
 * SORTIE_METRICS_PORT: a listener of its own that serves `/metrics` and nothing else, for
 * clusters that keep scrapers on a port the ingress never exposes. It goes through the
 * same access gate as the main port: with SORTIE_METRICS_TOKEN set the token is needed
 * here too; without it, the port itself is the protection, so the route is public.
 */
export async function buildMetricsServer(o: { logger: Logger; gate: RequestGate; metrics: Metrics; tokenRequired: boolean }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: o.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024,
    return503OnClosing: true,
  });
  const routes = installAccessGate(app, o.gate);
  installErrorHandling(app, { spaIndex: undefined, routes });
  metricsRoute(app, o.metrics, o.tokenRequired ? METRICS_SCRAPER : PUBLIC);
  return app;
}
