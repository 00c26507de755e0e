import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * Serves the built web UI from the same port as the API. Resolves false when the UI has
 * not been built, so Sortie still serves its API.
 */
export async function webUi(app: FastifyInstance, webDir: string): Promise<boolean> {
  if (!existsSync(path.join(webDir, 'index.html'))) {
    app.log.warn({ webDir }, 'web UI not built (run `npm run build`); serving the API only');
    return false;
  }
  // wildcard: false registers one route per built file up front instead of a catch-all,
  // so unknown paths reach the not-found handler (and its single-page fallback).
  await app.register(fastifyStatic, { root: webDir, wildcard: false, index: 'index.html' });
  return true;
}
