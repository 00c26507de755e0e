import type { FastifyInstance } from 'fastify';
import { PUBLIC } from './access-gate.js';

/**
 * `/healthz`: the process answers (liveness). `/readyz`: it can serve sessions, i.e. its
 * database answers and its runner is watching (readiness); a Service sends no traffic
 * to a replica that is not ready.
 */
export function healthRoutes(app: FastifyInstance, isReady: () => Promise<boolean>): void {
  app.get('/healthz', PUBLIC, async () => ({ status: 'ok' }));
  app.get('/readyz', PUBLIC, async (_request, reply) => {
    const ready = await isReady().catch(() => false);
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
  });
}
