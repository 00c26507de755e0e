import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RecordingPage } from '../contract/recordings.js';
import { ADMIN } from '../http/access-gate.js';
import { principal } from '../http/auth-hook.js';
import { CursorCodec, pageFields } from '../http/page-query.js';
import { parseInput } from '../http/parse-input.js';
import type { RecordingService } from './recording-service.js';

const listQuery = z.object({ ...pageFields });
const contentQuery = z.object({
  download: z.enum(['0', '1', 'true', 'false'], { error: 'must be 1 (as a file to save) or 0 (to play)' }).optional(),
});

/** GET /api/admin/recordings pages newest first, by (started_at, id). */
const recordingCursor = new CursorCodec('recordings', z.tuple([z.iso.datetime(), z.string().min(1).max(64)]));

/** Session recordings; every route here needs an admin. */
export function recordingRoutes(app: FastifyInstance, recordings: RecordingService): void {
  type WithId = { Params: { id: string } };

  app.get('/api/admin/recordings', ADMIN, async (request) => {
    const query = parseInput(listQuery, request.query);
    const after = query.cursor === undefined ? undefined : recordingCursor.decode(query.cursor);
    const page = await recordings.page(query.limit, after && { startedAt: after[0], id: after[1] });
    const body: RecordingPage = { recordings: page.recordings, next_cursor: page.next && recordingCursor.encode([page.next.startedAt, page.next.id]) };
    return body;
  });

  app.get<WithId>('/api/admin/recordings/:id', ADMIN, async (request) => recordings.get(request.params.id));

  // The file as recorded (docs/design.md, "Recordings"), streamed; ?download=1 asks for it as an attachment.
  app.get<WithId>('/api/admin/recordings/:id/content', ADMIN, async (request, reply) => {
    const query = parseInput(contentQuery, request.query);
    const download = query.download === '1' || query.download === 'true';
    const { recording, size, stream } = await recordings.content(principal(request), request.params.id, download ? 'download' : 'play');
    const day = recording.started_at.slice(0, 10);
    return reply
      .header('content-type', 'application/vnd.sortie.recording')
      .header('content-length', String(size))
      .header('cache-control', 'no-store')
      .header('content-disposition', `${download ? 'attachment' : 'inline'}; filename="sortie-${recording.app_id}-${day}-${recording.id.slice(0, 8)}.rec"`)
      .send(stream);
  });

  app.delete<WithId>('/api/admin/recordings/:id', ADMIN, async (request, reply) => {
    await recordings.delete(principal(request), request.params.id);
    return reply.status(204).send();
  });
}
