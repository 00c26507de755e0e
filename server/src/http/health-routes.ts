import type { FastifyInstance } from 'fastify';
import { PUBLIC } from './access-gate.js';

/** `draining`: the replica is shutting down (SIGTERM). */
export type Readiness = boolean | 'draining';

/**
 * `/healthz`: the process answers (liveness). `/readyz`: it can serve sessions, i.e. its
 * database answers and its runner is watching (readiness); a Service sends no traffic
 * to a replica that is not ready. A replica shutting down (SIGTERM) answers `draining`.
 */
export function healthRoutes(app: FastifyInstance, isReady: () => Promise<Readiness>): void {
  app.get('/healthz', PUBLIC, async () => ({ status: 'ok' }));
  app.get('/readyz', PUBLIC, async (_request, reply) => {
    const ready = await isReady().catch(() => false);
    if (ready === 'draining') {
      return reply.status(503).send({ status: 'draining', message: 'Sortie is shutting down: it takes no new streams and closes its open ones' });
    }
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
  });
}
