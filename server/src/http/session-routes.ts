import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { InputError } from '../errors.js';
import type { SessionService } from '../sessions/session-service.js';

const USER_ID = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[\w.@+-]+$/, 'may hold only letters, digits and . _ @ + -');

const createBody = z.object(
  {
    app_id: z.string({ error: 'app_id is required and must be a string' }).trim().min(1, 'app_id must not be empty'),
    user_id: USER_ID.optional(),
  },
  { error: 'The body must be a JSON object such as {"app_id": "xterm"}' },
);

const listQuery = z.object({
  user_id: USER_ID.optional(),
  status: z.enum(['creating', 'running', 'failed', 'terminated']).optional(),
});

/** Users who don't say who they are share this id until sign-in exists. */
export const ANONYMOUS_USER = 'anonymous';

/** The seed's Sessions API. Handlers only translate HTTP to service calls. */
export function sessionRoutes(app: FastifyInstance, sessions: SessionService): void {
  app.post('/api/sessions', async (request, reply) => {
    const input = parse(createBody, request.body);
    const session = await sessions.create({ appId: input.app_id, userId: input.user_id ?? ANONYMOUS_USER });
    return reply.status(201).header('location', `/api/sessions/${session.id}`).send(session);
  });

  app.get('/api/sessions', async (request) => {
    const query = parse(listQuery, request.query);
    return { sessions: await sessions.list({ userId: query.user_id, status: query.status }) };
  });

  app.get<{ Params: { id: string } }>('/api/sessions/:id', async (request) => sessions.get(request.params.id));

  app.delete<{ Params: { id: string } }>('/api/sessions/:id', async (request) => sessions.end(request.params.id));
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value ?? undefined);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new InputError(`${field}${issue.message}`);
}
