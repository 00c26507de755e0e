import type { Db } from '../db/database.js';
import type { SessionSharesTable, SessionWatchersTable } from '../db/schema.js';

export type ShareRow = SessionSharesTable;
export type WatcherRow = SessionWatchersTable;

/** The `session_shares` and `session_watchers` tables. */
export class ShareRepository {
  constructor(private readonly db: Db) {}

  async insert(row: ShareRow): Promise<void> {
    await this.db.insertInto('session_shares').values(row).execute();
  }

  async get(id: string): Promise<ShareRow | undefined> {
    return this.db.selectFrom('session_shares').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async byTokenHash(hash: string): Promise<ShareRow | undefined> {
    return this.db.selectFrom('session_shares').selectAll().where('token_hash', '=', hash).executeTakeFirst();
  }

  /** A session's shares that still hold at `now`, oldest first. */
  async activeOf(sessionId: string, now: string): Promise<ShareRow[]> {
    return this.db
      .selectFrom('session_shares')
      .selectAll()
      .where('session_id', '=', sessionId)
      .where('ended_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  /** The user shares held by `userId` at `now`, on one session or on all. */
  async heldBy(userId: string, now: string, sessionId?: string): Promise<ShareRow[]> {
    let query = this.db
      .selectFrom('session_shares')
      .selectAll()
      .where('user_id', '=', userId)
      .where('ended_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]));
    if (sessionId !== undefined) query = query.where('session_id', '=', sessionId);
    return query.execute();
  }

  /** Ends a share and what was redeemed from it (a link's); answers the rows it ended. */
  async end(id: string, at: string): Promise<ShareRow[]> {
    const rows = await this.db
      .selectFrom('session_shares')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', id), eb('link_id', '=', id)]))
      .where('ended_at', 'is', null)
      .execute();
    if (rows.length === 0) return [];
    await this.db
      .updateTable('session_shares')
      .set({ ended_at: at })
      .where('id', 'in', rows.map((r) => r.id))
      .where('ended_at', 'is', null)
      .execute();
    return rows;
  }

  /** Ends every share of a session; answers the rows it ended. */
  async endAllOf(sessionId: string, at: string): Promise<ShareRow[]> {
    const rows = await this.db.selectFrom('session_shares').selectAll().where('session_id', '=', sessionId).where('ended_at', 'is', null).execute();
    if (rows.length === 0) return [];
    await this.db.updateTable('session_shares').set({ ended_at: at }).where('session_id', '=', sessionId).where('ended_at', 'is', null).execute();
    return rows;
  }

  async addWatcher(row: WatcherRow): Promise<void> {
    await this.db.insertInto('session_watchers').values(row).execute();
  }

  async removeWatcher(id: string): Promise<void> {
    await this.db.deleteFrom('session_watchers').where('id', '=', id).execute();
  }

  async touchWatchers(ids: string[], at: string): Promise<void> {
    if (ids.length === 0) return;
    await this.db.updateTable('session_watchers').set({ seen_at: at }).where('id', 'in', ids).execute();
  }

  /** Watchers of a session seen since `since`, in the order they came. */
  async watchersOf(sessionId: string, since: string): Promise<WatcherRow[]> {
    return this.db.selectFrom('session_watchers').selectAll().where('session_id', '=', sessionId).where('seen_at', '>=', since).orderBy('opened_at').execute();
  }

  /** Forgets watcher rows nobody has refreshed since `before` (a replica that stopped without closing them). */
  async pruneWatchers(before: string): Promise<void> {
    await this.db.deleteFrom('session_watchers').where('seen_at', '<', before).execute();
  }
}
