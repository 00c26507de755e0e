import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { SessionPage } from '../contract/pages.js';
import { SESSION_STATUSES, USER_ID_MAX_LENGTH, USER_ID_PATTERN, type SessionStatus } from '../contract/sessions.js';
import type { SessionService } from '../sessions/session-service.js';
import { NotFoundError } from '../errors.js';
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
    /** For apps with `recording: "optional"`: whether this session is recorded (default false). */
    record: z.boolean({ error: 'must be true or false' }).optional(),
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
    const session = await sessions.create(principal(request), { appId: input.app_id, onBehalfOf: input.user_id, record: input.record });
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
    // Sessions shared with the caller come on the first page, among their own by creation time (they are few: live ones only).
    const shared = query.cursor === undefined && sessions.shares ? await sessions.shares.sharedSessions(principal(request), query.status) : [];
    const byId = new Map(shared.map((session) => [session.id, session]));
    const own = page.sessions.map((session) => byId.get(session.id) ?? session);
    const extra = shared.filter((session) => !own.some((s) => s.id === session.id));
    const all = extra.length === 0 ? own : [...own, ...extra].sort((a, b) => (a.created_at === b.created_at ? b.id.localeCompare(a.id) : b.created_at.localeCompare(a.created_at)));
    const body: SessionPage = { sessions: all, next_cursor: page.next && sessionCursor.encode([page.next.createdAt, page.next.id]) };
    return body;
  });

  app.get<WithId>('/api/sessions/:id', SIGNED_IN, async (request) => {
    const caller = principal(request);
    const shares = sessions.shares;
    try {
      const session = await sessions.get(caller, request.params.id);
      // Its owner (and admins) see who else is watching.
      const watchers = shares && session.status === 'running' ? await shares.watchersOf(session.id) : [];
      return watchers.length > 0 ? { ...session, watched_by: watchers } : session;
    } catch (err) {
      const shared = err instanceof NotFoundError && shares ? await shares.sharedSession(caller, request.params.id) : undefined;
      if (!shared) throw err;
      return shared;
    }
  });

  app.delete<WithId>('/api/sessions/:id', SIGNED_IN, async (request) => sessions.end(principal(request), request.params.id));
}
