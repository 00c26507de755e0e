import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AUDIT_CSV_HEADER, auditCsvLine } from '../audit/audit-csv.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuditFilter } from '../audit/audit-repository.js';
import { AUDIT_ACTION_GROUPS, AUDIT_ACTIONS, type AuditPage } from '../contract/audit.js';
import { ADMIN } from './access-gate.js';
import { CursorCodec, pageFields } from './page-query.js';
import { parseInput } from './parse-input.js';

const ACTION_MESSAGE = `must be an action such as "session.end", or a group such as "session.*" (groups: ${AUDIT_ACTION_GROUPS.join(', ')})`;
const TIME_MESSAGE = 'must be a date (2026-01-31) or an ISO-8601 time with its offset (2026-01-31T09:00:00Z)';

const time = z
  .string({ error: TIME_MESSAGE })
  .trim()
  .refine((value) => z.iso.date().safeParse(value).success || z.iso.datetime({ offset: true }).safeParse(value).success, TIME_MESSAGE)
  .transform((value) => new Date(value).toISOString());

const filterFields = {
  /** A user id or username. */
  actor: z.string().trim().max(200, 'must be at most 200 characters').optional(),
  action: z
    .string({ error: ACTION_MESSAGE })
    .trim()
    .refine((value) => value === '' || (AUDIT_ACTIONS as readonly string[]).includes(value) || AUDIT_ACTION_GROUPS.some((g) => value === `${g}.*`), ACTION_MESSAGE)
    .optional(),
  from: time.optional(),
  to: time.optional(),
};

const csvQuery = z.object(filterFields);
const pageQuery = z.object({ ...filterFields, ...pageFields });
/** Where a page ended: the last event's time and id (ids sort within one time). */
const auditCursor = new CursorCodec('audit', z.tuple([z.iso.datetime(), z.string().regex(/^[0-9a-f]{1,64}$/)]));

function toFilter(query: z.infer<typeof csvQuery>): AuditFilter {
  return {
    ...(query.actor ? { actor: query.actor } : {}),
    ...(query.action ? { actions: query.action.endsWith('.*') ? AUDIT_ACTIONS.filter((a) => a.startsWith(query.action!.slice(0, -1))) : [query.action] } : {}),
    ...(query.from ? { from: query.from } : {}),
    ...(query.to ? { to: query.to } : {}),
  };
}

/** The audit log for admins: pages of JSON, newest first, and the same selection as CSV. */
export function auditRoutes(app: FastifyInstance, audit: AuditLog): void {
  app.get('/api/admin/audit', ADMIN, async (request) => {
    const query = parseInput(pageQuery, request.query);
    const after = query.cursor === undefined ? undefined : auditCursor.decode(query.cursor);
    const page = await audit.page(toFilter(query), query.limit, after && { at: after[0], id: after[1] });
    const body: AuditPage = { events: page.events, next_cursor: page.next && auditCursor.encode([page.next.at, page.next.id]) };
    return body;
  });

  // Streamed a page at a time: a year of events never sits in memory at once.
  app.get('/api/admin/audit.csv', ADMIN, async (request, reply) => {
    const filter = toFilter(parseInput(csvQuery, request.query));
    async function* lines() {
      yield AUDIT_CSV_HEADER;
      for await (const event of audit.all(filter)) yield auditCsvLine(event);
    }
    const day = new Date().toISOString().slice(0, 10);
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="sortie-audit-${day}.csv"`)
      .header('cache-control', 'no-store')
      .send(Readable.from(lines()));
  });
}
