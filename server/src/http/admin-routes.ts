import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { UserPage } from '../contract/pages.js';
import { DISPLAY_NAME_MAX_LENGTH, ROLES, USERNAME_PATTERN } from '../contract/users.js';
import type { AuthService } from '../auth/auth-service.js';
import type { UserHomeService } from '../sessions/user-homes.js';
import { principal } from './auth-hook.js';
import { CursorCodec, pageFields } from './page-query.js';
import { parseInput } from './parse-input.js';
import { ADMIN } from './access-gate.js';

const role = z.enum(ROLES, { error: 'must be "admin" or "user"' });
const username = z
  .string({ error: 'is required' })
  .trim()
  .regex(USERNAME_PATTERN, 'must be 1-64 letters, digits or . _ @ + -');

const createUser = z.object(
  {
    username,
    password: z.string({ error: 'is required' }),
    display_name: z.string().max(DISPLAY_NAME_MAX_LENGTH, `must be at most ${DISPLAY_NAME_MAX_LENGTH} characters`).optional(),
    role: role.default('user'),
  },
  { error: 'The body must be a JSON object' },
);

const updateUser = z
  .object(
    {
      display_name: z.string().trim().min(1, 'must not be empty').max(DISPLAY_NAME_MAX_LENGTH, `must be at most ${DISPLAY_NAME_MAX_LENGTH} characters`).optional(),
      role: role.optional(),
      password: z.string().optional(),
      disabled: z.boolean({ error: 'must be true or false' }).optional(),
    },
    { error: 'The body must be a JSON object' },
  )
  .strict();

const approvals = z.object(
  {
    app_ids: z.array(z.string(), { error: 'must be a list of app ids' }).default([]),
    categories: z.array(z.string(), { error: 'must be a list of categories' }).default([]),
  },
  { error: 'The body must be a JSON object with app_ids and categories' },
);

const listUsersQuery = z.object({ ...pageFields });

/** GET /api/admin/users pages by username, which is unique. */
const userCursor = new CursorCodec('users', z.tuple([z.string().min(1).max(256)]));

/** User administration; every route here needs an admin. */
export function adminRoutes(app: FastifyInstance, auth: AuthService, homes: UserHomeService): void {
  type WithId = { Params: { id: string } };

  app.get('/api/admin/users', ADMIN, async (request) => {
    const query = parseInput(listUsersQuery, request.query);
    const after = query.cursor === undefined ? undefined : userCursor.decode(query.cursor)[0];
    const page = await auth.listUsers({ limit: query.limit, after });
    const body: UserPage = { users: page.users, next_cursor: page.next === null ? null : userCursor.encode([page.next]) };
    return body;
  });

  app.post('/api/admin/users', ADMIN, async (request, reply) => {
    const user = await auth.createUser(principal(request), parseInput(createUser, request.body));
    return reply.status(201).send(user);
  });

  app.patch<WithId>('/api/admin/users/:id', ADMIN, async (request) =>
    auth.updateUser(principal(request), request.params.id, parseInput(updateUser, request.body)),
  );

  app.delete<WithId>('/api/admin/users/:id', ADMIN, async (request, reply) => {
    await auth.deleteUser(principal(request), request.params.id);
    return reply.status(204).send();
  });

  // A user's persistent home (apps with persistent_home), with everything in it.
  app.delete<WithId>('/api/admin/users/:id/home', ADMIN, async (request, reply) => {
    await homes.delete(principal(request), request.params.id);
    return reply.status(204).send();
  });

  app.get<WithId>('/api/admin/users/:id/approvals', ADMIN, async (request) => auth.approvals(request.params.id));

  app.put<WithId>('/api/admin/users/:id/approvals', ADMIN, async (request) =>
    auth.setApprovals(principal(request), request.params.id, parseInput(approvals, request.body)),
  );
}
