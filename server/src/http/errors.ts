import { createReadStream } from 'node:fs';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { RouteTable } from './access-gate.js';
import type { ErrorBody } from '../contract/errors.js';
import { ConflictError, ForbiddenError, InputError, NotFoundError, PayloadTooLargeError, TooManyRequestsError, UnauthorizedError } from '../errors.js';

/**
 * The one place that turns errors into responses. Domain errors map by meaning; Fastify's
 * own 4xx errors (malformed JSON, oversized body, wrong content type) keep their status but
 * get the same shape, except that an oversized body is a plain 400 like any bad input.
 * Anything else is our bug: logged in full, answered as a 500 without internals.
 */
export interface ErrorHandlingOptions {
  /** The UI's index.html for deep links, when the UI is built. */
  spaIndex: string | undefined;
  /** Tells a known path asked with the wrong method (405) from an unknown one (404). */
  routes: RouteTable;
}

export function installErrorHandling(app: FastifyInstance, options: ErrorHandlingOptions): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof NotFoundError) return reply.status(404).send(body('not_found', err.message));
    if (err instanceof InputError) return reply.status(400).send(body('bad_request', err.message));
    if (err instanceof ConflictError) return reply.status(409).send(body('conflict', err.message));
    if (err instanceof UnauthorizedError) return reply.status(401).send(body('unauthorized', err.message));
    if (err instanceof ForbiddenError) return reply.status(403).send(body('forbidden', err.message));
    if (err instanceof PayloadTooLargeError) return reply.status(413).send(body('payload_too_large', err.message));
    if (err instanceof TooManyRequestsError) {
      return reply.status(429).header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterSeconds)))).send(body('too_many_requests', err.message));
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(400).send(body('bad_request', `The request body is too large (at most ${app.initialConfig.bodyLimit} bytes)`));
    }
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
      return reply.status(400).send(body('bad_request', `The request body is not valid JSON: ${err.message}`));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.status(status).send(body(codeFor(status), err.message));
    request.log.error({ err }, 'request failed');
    return reply.status(500).send(body('internal', 'Sortie hit an unexpected error; the details are in its log'));
  });

  app.setNotFoundHandler((request, reply) => {
    const urlPath = request.url.split('?')[0]!;
    const allowed = options.routes.methodsAt(urlPath);
    if (allowed.length > 0) {
      return reply
        .status(405)
        .header('allow', allowed.join(', '))
        .send(body('method_not_allowed', `${urlPath} does not accept ${request.method}; it accepts ${allowed.join(', ')}`));
    }
    // Deep links into the single-page UI (e.g. /sessions/abc) load the app, which routes
    // itself. Decided on the path as the router would read it, so "//api/…" or "/%61pi/…"
    // get the API's 404 rather than a page.
    if (options.spaIndex && request.method === 'GET' && !isApiPath(urlPath)) {
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(createReadStream(options.spaIndex));
    }
    return reply.status(404).send(body('not_found', `No route for ${request.method} ${urlPath}`));
  });
}

function isApiPath(urlPath: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return true; // malformed escapes: certainly not a page of the UI
  }
  // /metrics too: a scraper pointed at the wrong port should get a 404, not the UI's page.
  return /^\/+(api|ws|metrics)([/.]|$)/i.test(decoded);
}

function body(error: string, message: string): ErrorBody {
  return { error, message };
}

function codeFor(status: number): string {
  if (status === 404) return 'not_found';
  if (status === 405) return 'method_not_allowed';
  if (status === 415) return 'unsupported_media_type';
  return 'bad_request';
}
