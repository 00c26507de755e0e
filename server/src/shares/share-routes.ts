import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { SHARE_LINK_MINUTES_MAX, SHARE_LINK_MINUTES_MIN, SHARE_MODES } from '../contract/shares.js';
import { USER_ID_MAX_LENGTH } from '../contract/sessions.js';
import { SIGNED_IN } from '../http/access-gate.js';
import { principal } from '../http/auth-hook.js';
import { parseInput } from '../http/parse-input.js';
import type { ShareService } from './share-service.js';

const MODE = z.enum(SHARE_MODES, { error: 'must be "view" (watch only: keys, pointer and clipboard are dropped) or "control"' });
const MINUTES = `must be a whole number of minutes from ${SHARE_LINK_MINUTES_MIN} to ${SHARE_LINK_MINUTES_MAX} (one week)`;

const createBody = z
  .strictObject(
    {
      user: z.string({ error: 'must be a username' }).trim().min(1, 'must not be empty').max(USER_ID_MAX_LENGTH, `must be at most ${USER_ID_MAX_LENGTH} characters`).optional(),
      link: z.literal(true, { error: 'must be true to create a link' }).optional(),
      mode: MODE,
      expires_in_minutes: z.number({ error: MINUTES }).int(MINUTES).min(SHARE_LINK_MINUTES_MIN, MINUTES).max(SHARE_LINK_MINUTES_MAX, MINUTES).optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? 'The body may hold only "user", "link", "mode" and "expires_in_minutes"'
          : 'The body must be a JSON object such as {"user": "bob", "mode": "view"} or {"link": true, "mode": "view", "expires_in_minutes": 60}',
    },
  )
  .refine((body) => (body.user === undefined) !== (body.link === undefined), 'Give either "user" (a username) or "link": true, not both and not neither')
  .refine((body) => body.link || body.expires_in_minutes === undefined, '"expires_in_minutes" is for links; a user share lasts until it is revoked or the session ends');

const redeemBody = z.object(
  { token: z.string({ error: 'is required: the part of the share link after /share/' }).min(16, 'is not a share link token').max(128, 'is not a share link token') },
  { error: 'The body must be a JSON object such as {"token": "…"}' },
);

/** Sharing a session: the owner (or an admin) shares and revokes; a signed-in person redeems a link. */
export function shareRoutes(app: FastifyInstance, shares: ShareService): void {
  type WithId = { Params: { id: string } };
  type WithShare = { Params: { id: string; share_id: string } };

  app.post<WithId>('/api/sessions/:id/shares', SIGNED_IN, async (request, reply) => {
    const input = parseInput(createBody, request.body);
    const share = await shares.create(principal(request), request.params.id, {
      ...(input.user !== undefined ? { user: input.user } : { link: true as const }),
      mode: input.mode,
      ...(input.expires_in_minutes !== undefined ? { expiresInMinutes: input.expires_in_minutes } : {}),
    });
    return reply.status(201).send(share);
  });

  app.get<WithId>('/api/sessions/:id/shares', SIGNED_IN, async (request) => shares.list(principal(request), request.params.id));

  app.delete<WithShare>('/api/sessions/:id/shares/:share_id', SIGNED_IN, async (request, reply) => {
    await shares.revoke(principal(request), request.params.id, request.params.share_id);
    return reply.status(204).send();
  });

  app.post('/api/shares/redeem', SIGNED_IN, async (request) => shares.redeem(principal(request), parseInput(redeemBody, request.body).token));
}
