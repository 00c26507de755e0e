import type { FastifyInstance } from 'fastify';
import type { AppRepository } from '../catalog/app-repository.js';

export function appRoutes(app: FastifyInstance, apps: AppRepository): void {
  app.get('/api/apps', async () => ({ applications: await apps.list() }));
}
