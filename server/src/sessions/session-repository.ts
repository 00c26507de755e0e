import type { Db } from '../db/database.js';
import type { SessionsTable } from '../db/schema.js';
import { canTransition, LIVE_STATUSES, type SessionStatus } from './session.js';

export class SessionRepository {
  constructor(private readonly db: Db) {}

  async insert(row: SessionsTable): Promise<void> {
    await this.db.insertInto('sessions').values(row).execute();
  }

  async get(id: string): Promise<SessionsTable | undefined> {
    return this.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async list(filter: { userId?: string; status?: SessionStatus } = {}): Promise<SessionsTable[]> {
    let query = this.db.selectFrom('sessions').selectAll();
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    return query.orderBy('created_at', 'desc').orderBy('id').execute();
  }

  async listLive(): Promise<SessionsTable[]> {
    return this.db.selectFrom('sessions').selectAll().where('status', 'in', LIVE_STATUSES).execute();
  }

  /** Live sessions nobody has viewed since `cutoff` (ISO time), for SESSION_TIMEOUT. */
  async listLiveIdleSince(cutoff: string): Promise<SessionsTable[]> {
    return this.db
      .selectFrom('sessions')
      .selectAll()
      .where('status', 'in', LIVE_STATUSES)
      .where('last_active_at', '<', cutoff)
      .execute();
  }

  async touch(ids: string[], at: string): Promise<void> {
    if (ids.length === 0) return;
    await this.db.updateTable('sessions').set({ last_active_at: at }).where('id', 'in', ids).execute();
  }

  /**
   * Moves a session to `to` only if the move is allowed from the status it has now,
   * checked inside the UPDATE so two writers (an API call and a runner event) cannot
   * both win. Returns the updated row, or undefined when the move was not allowed.
   */
  async transition(
    id: string,
    to: SessionStatus,
    changes: { reason?: string | null; endpoint?: string | null } = {},
  ): Promise<SessionsTable | undefined> {
    const allowedFrom = (['creating', 'running', 'failed', 'terminated'] as const).filter((from) => canTransition(from, to));
    if (allowedFrom.length === 0) return undefined;
    const updated = await this.db
      .updateTable('sessions')
      .set({ status: to, updated_at: new Date().toISOString(), ...changes })
      .where('id', '=', id)
      .where('status', 'in', allowedFrom)
      .returningAll()
      .executeTakeFirst();
    return updated;
  }
}
