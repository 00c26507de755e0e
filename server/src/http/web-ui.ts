import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * Serves the built web UI from the same port as the API. Resolves to the UI's index.html
 * (the single-page fallback), or undefined when the UI has not been built, so Sortie still
 * serves its API.
 */
export async function webUi(app: FastifyInstance, webDir: string): Promise<string | undefined> {
  const index = path.join(webDir, 'index.html');
  if (!existsSync(index)) {
    app.log.warn({ webDir }, 'web UI not built (run `npm run build`); serving the API only');
    return undefined;
  }
  // wildcard: false registers one route per built file up front instead of a catch-all,
  // so unknown paths reach the not-found handler (and its single-page fallback).
  // The UI's files are public (the sign-in page is one of them); fastify-static takes no
  // route config, so its own scope marks every route it adds.
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'public' };
    });
    await scope.register(fastifyStatic, { root: webDir, wildcard: false, index: 'index.html' });
  });
  return index;
}
