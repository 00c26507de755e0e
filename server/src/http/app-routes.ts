import type { FastifyInstance } from 'fastify';
import { appSchema } from '../catalog/app.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import { InputError } from '../errors.js';
import { principal } from './auth-hook.js';
import { parseInput } from './parse-input.js';
import { ADMIN, SIGNED_IN } from './access-gate.js';

/** The catalog: everyone lists what they may launch; admins manage it. */
export function appRoutes(app: FastifyInstance, catalog: CatalogService): void {
  app.get('/api/apps', SIGNED_IN, async (request) => ({ applications: await catalog.list(principal(request)) }));

  app.post('/api/apps', ADMIN, async (request, reply) => {
    const created = await catalog.create(principal(request), parseInput(appSchema, request.body));
    return reply.status(201).header('location', `/api/apps/${created.id}`).send(created);
  });

  app.put<{ Params: { id: string } }>('/api/apps/:id', ADMIN, async (request) => {
    const body = request.body as { id?: unknown } | null;
    // The id is the app's name in URLs and pod labels; it is given by the path, not changed.
    if (body && typeof body === 'object' && body.id !== undefined && body.id !== request.params.id) {
      throw new InputError(`field "id" cannot change (the path says "${request.params.id}")`);
    }
    return catalog.update(principal(request), parseInput(appSchema, { ...(body ?? {}), id: request.params.id }));
  });

  app.delete<{ Params: { id: string } }>('/api/apps/:id', ADMIN, async (request, reply) => {
    await catalog.delete(principal(request), request.params.id);
    return reply.status(204).send();
  });
}
