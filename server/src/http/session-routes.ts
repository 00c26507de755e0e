import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { SessionPage } from '../contract/pages.js';
import { SESSION_STATUSES, USER_ID_MAX_LENGTH, USER_ID_PATTERN, type SessionStatus } from '../contract/sessions.js';
import type { SessionService } from '../sessions/session-service.js';
import { SIGNED_IN } from './access-gate.js';
import { principal } from './auth-hook.js';
import { CursorCodec, pageFields } from './page-query.js';
import { parseInput } from './parse-input.js';

const USER_ID = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(USER_ID_MAX_LENGTH, `must be at most ${USER_ID_MAX_LENGTH} characters`)
  .regex(USER_ID_PATTERN, 'may hold only letters, digits and . _ @ + -');

const createBody = z.object(
  {
    app_id: z.string({ error: 'is required and must be a string' }).trim().min(1, 'must not be empty'),
    /** Honoured for admins (and when sign-in is off); others always launch for themselves. */
    user_id: USER_ID.optional(),
  },
  { error: 'The body must be a JSON object such as {"app_id": "xterm"}' },
);

const STATUS_MESSAGE = `must be ${SESSION_STATUSES.slice(0, -1).join(', ')} or ${SESSION_STATUSES.at(-1)}, or several of them separated by commas`;

const listQuery = z.object({
  user_id: USER_ID.optional(),
  status: z
    .string({ error: STATUS_MESSAGE })
    .transform((value) => value.split(','))
    .refine((values): values is SessionStatus[] => values.every((v) => (SESSION_STATUSES as readonly string[]).includes(v)), STATUS_MESSAGE)
    .optional(),
  ...pageFields,
});

/** GET /api/sessions pages newest first, by (created_at, id). */
const sessionCursor = new CursorCodec('sessions', z.tuple([z.iso.datetime(), z.string().min(1).max(128)]));

/** The seed's Sessions API. Handlers only translate HTTP to service calls. */
export function sessionRoutes(app: FastifyInstance, sessions: SessionService): void {
  type WithId = { Params: { id: string } };

  app.post('/api/sessions', SIGNED_IN, async (request, reply) => {
    const input = parseInput(createBody, request.body);
    const session = await sessions.create(principal(request), { appId: input.app_id, onBehalfOf: input.user_id });
    return reply.status(201).header('location', `/api/sessions/${session.id}`).send(session);
  });

  app.get('/api/sessions', SIGNED_IN, async (request) => {
    const query = parseInput(listQuery, request.query);
    const after = query.cursor === undefined ? undefined : sessionCursor.decode(query.cursor);
    const page = await sessions.list(
      principal(request),
      { userId: query.user_id, statuses: query.status },
      { limit: query.limit, after: after && { createdAt: after[0], id: after[1] } },
    );
    const body: SessionPage = { sessions: page.sessions, next_cursor: page.next && sessionCursor.encode([page.next.createdAt, page.next.id]) };
    return body;
  });

  app.get<WithId>('/api/sessions/:id', SIGNED_IN, async (request) => sessions.get(principal(request), request.params.id));

  app.delete<WithId>('/api/sessions/:id', SIGNED_IN, async (request) => sessions.end(principal(request), request.params.id));
}
