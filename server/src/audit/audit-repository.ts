import type { Db } from '../db/database.js';
import type { AuditEventsTable } from '../db/schema.js';

export type AuditRow = AuditEventsTable;

/** What a page of the log is narrowed to; every field is optional. */
export interface AuditFilter {
  /** A user id or username: events that user did. */
  actor?: string;
  /** One action (`session.end`), or a group's prefix with its dot (`session.`). */
  action?: string;
  /** ISO-8601 bounds: from inclusive, to exclusive. */
  from?: string;
  to?: string;
}

/** Where a page starts: just after (older than) this event. */
export interface AuditPosition {
  at: string;
  id: string;
}

/** The audit_events table: append, read newest first, prune. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  async insert(row: AuditRow): Promise<void> {
    await this.db.insertInto('audit_events').values(row).execute();
  }

  /** Up to `limit` events older than `after`, newest first. */
  async page(filter: AuditFilter, limit: number, after?: AuditPosition): Promise<AuditRow[]> {
    let query = this.db.selectFrom('audit_events').selectAll();
    if (filter.actor !== undefined) {
      const actor = filter.actor;
      query = query.where((eb) => eb.or([eb('actor_id', '=', actor), eb('actor_name', '=', actor)]));
    }
    if (filter.action?.endsWith('.')) {
      // A range rather than LIKE: the same on both databases, and it can use the index ('/' follows '.').
      query = query.where('action', '>=', filter.action).where('action', '<', `${filter.action.slice(0, -1)}/`);
    } else if (filter.action !== undefined) {
      query = query.where('action', '=', filter.action);
    }
    if (filter.from !== undefined) query = query.where('at', '>=', filter.from);
    if (filter.to !== undefined) query = query.where('at', '<', filter.to);
    if (after) {
      query = query.where((eb) => eb.or([eb('at', '<', after.at), eb.and([eb('at', '=', after.at), eb('id', '<', after.id)])]));
    }
    return query.orderBy('at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  }

  /** Removes events from before `cutoff`; answers how many. */
  async deleteBefore(cutoff: string): Promise<number> {
    const result = await this.db.deleteFrom('audit_events').where('at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
