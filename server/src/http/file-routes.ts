import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { InputError } from '../errors.js';
import type { SessionFiles } from '../sessions/session-files.js';
import { SIGNED_IN } from './access-gate.js';
import { principal } from './auth-hook.js';

type FileRequest = { Params: { id: string }; Querystring: { path?: unknown } };

/**
 * The session file API: list a folder of the session's home, download a file, upload one.
 * Both directions stream: a download is piped from the open file, an upload from the
 * request to a file in the home, never held whole in Sortie. Handlers only translate HTTP
 * to SessionFiles calls.
 */
export async function fileRoutes(app: FastifyInstance, files: SessionFiles): Promise<void> {
  app.get<FileRequest>('/api/sessions/:id/files', SIGNED_IN, async (request) =>
    files.list(principal(request), request.params.id, request.query.path),
  );

  // HEAD declared here, not left to Fastify: its own HEAD route would read the whole file to
  // throw it away, and answer Content-Length 0.
  app.route<FileRequest>({
    method: ['GET', 'HEAD'],
    url: '/api/sessions/:id/files/content',
    ...SIGNED_IN,
    handler: async (request, reply) => {
      const file = await files.download(principal(request), request.params.id, request.query.path);
      reply
        .header('content-type', 'application/octet-stream')
        .header('content-length', String(file.size))
        .header('content-disposition', attachment(file.name))
        .header('last-modified', new Date(file.modified).toUTCString())
        .header('cache-control', 'private, no-store');
      if (request.method === 'HEAD') {
        file.stream.destroy();
        return reply.send();
      }
      return reply.send(file.stream);
    },
  });

  // Its own scope, so the raw-body parser below applies to the upload route only: every
  // other route keeps JSON-only bodies under the server's small bodyLimit.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // Any content type, or none: the body is left unread in request.raw for the handler to
    // stream. Fastify's bodyLimit is enforced only when Fastify reads a body itself, so it
    // does not apply here; SORTIE_MAX_UPLOAD_MB does, counted as the bytes arrive.
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    scope.put<FileRequest>('/api/sessions/:id/files/content', SIGNED_IN, async (request, reply) => {
      const raw = request.raw;
      try {
        const saved = await files.upload(principal(request), request.params.id, request.query.path, bodyOf(raw), declaredLength(raw));
        return await reply.send(saved);
      } catch (err) {
        // Refused before the body was read to its end: close the connection after the
        // answer rather than reading (up to a gigabyte) only to throw it away.
        if (!raw.complete) reply.header('connection', 'close');
        throw err;
      }
    });
  });
}

/**
 * The request body as it arrives. Left undestroyed when the reader stops early, so an
 * error can still be answered; a body that ends before it is complete (the client went
 * away) throws, so the half-written file is deleted rather than kept.
 */
async function* bodyOf(raw: IncomingMessage): AsyncGenerator<Uint8Array> {
  for await (const chunk of raw.iterator({ destroyOnReturn: false })) yield chunk as Uint8Array;
  if (!raw.complete) throw new InputError('The upload was cut off before its end; nothing was saved');
}

function declaredLength(raw: IncomingMessage): number | undefined {
  const header = raw.headers['content-length'];
  if (header === undefined) return undefined;
  // Node's parser has refused a malformed or doubled Content-Length already.
  return Number(header);
}

/**
 * `attachment` with the name twice (RFC 6266): a plain-ASCII fallback for old clients, and
 * the exact name as UTF-8 in `filename*`. Quotes, backslashes, control characters and
 * everything outside printable ASCII never reach the header as they are.
 */
export function attachment(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  let encoded: string;
  try {
    encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  } catch {
    return `attachment; filename="${fallback}"`; // a lone surrogate: the fallback is all there is
  }
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
