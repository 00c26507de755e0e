import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AUDIT_CSV_HEADER, auditCsvLine } from '../audit/audit-csv.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuditFilter } from '../audit/audit-repository.js';
import { AUDIT_ACTION_GROUPS, AUDIT_ACTIONS, AUDIT_PAGE_LIMIT_DEFAULT, AUDIT_PAGE_LIMIT_MAX } from '../contract/audit.js';
import { ADMIN } from './access-gate.js';
import { parseInput } from './parse-input.js';

const ACTION_MESSAGE = `must be an action such as "session.end", or a group such as "session.*" (groups: ${AUDIT_ACTION_GROUPS.join(', ')})`;
const TIME_MESSAGE = 'must be a date (2026-01-31) or an ISO-8601 time with its offset (2026-01-31T09:00:00Z)';
const LIMIT_MESSAGE = `must be a whole number from 1 to ${AUDIT_PAGE_LIMIT_MAX} (leave it out for ${AUDIT_PAGE_LIMIT_DEFAULT})`;

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
const pageQuery = z.object({
  ...filterFields,
  limit: z
    .string({ error: LIMIT_MESSAGE })
    .regex(/^\d{1,4}$/, LIMIT_MESSAGE)
    .transform(Number)
    .refine((n) => n >= 1 && n <= AUDIT_PAGE_LIMIT_MAX, LIMIT_MESSAGE)
    .default(AUDIT_PAGE_LIMIT_DEFAULT),
  cursor: z.string().optional(),
});

function toFilter(query: z.infer<typeof csvQuery>): AuditFilter {
  return {
    ...(query.actor ? { actor: query.actor } : {}),
    ...(query.action ? { action: query.action.endsWith('.*') ? query.action.slice(0, -1) : query.action } : {}),
    ...(query.from ? { from: query.from } : {}),
    ...(query.to ? { to: query.to } : {}),
  };
}

/** The audit log for admins: pages of JSON, newest first, and the same selection as CSV. */
export function auditRoutes(app: FastifyInstance, audit: AuditLog): void {
  app.get('/api/admin/audit', ADMIN, async (request) => {
    const query = parseInput(pageQuery, request.query);
    return audit.page(toFilter(query), query.limit, query.cursor || undefined);
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
