import type { Db } from '../db/database.js';
import type { AuditEventsTable } from '../db/schema.js';

export type AuditRow = AuditEventsTable;

/** What a page of the log is narrowed to; every field is optional. */
export interface AuditFilter {
  /** A user id or username: events that user did. */
  actor?: string;
  /** The actions to select: one, or every action of a group. */
  actions?: readonly string[];
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
    // Named one by one rather than by prefix: a text range or LIKE depends on the database's collation.
    if (filter.actions !== undefined) query = query.where('action', 'in', filter.actions);
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
