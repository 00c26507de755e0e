import { sql } from 'kysely';
import { isPostgres, takeTurns, type Db } from '../db/database.js';
import type { SessionsTable } from '../db/schema.js';
import { ACTIVE_STATUSES, ALL_STATUSES, canTransition, LIVE_STATUSES, type SessionStatus } from './session.js';

/** Where a page of the sessions list starts: after the session with this sort key. */
export interface SessionListKey {
  createdAt: string;
  id: string;
}

export class SessionRepository {
  constructor(private readonly db: Db) {}

  /**
   * Inserts a session with the next arrival number. The number is taken inside the INSERT,
   * which on SQLite (one writer) is enough for two inserts never to get the same one. On
   * PostgreSQL two inserts on two connections read the same max(arrival): a transaction-level
   * advisory lock makes them take turns, across every replica on the database.
   */
  async insert(row: Omit<SessionsTable, 'arrival'>): Promise<SessionsTable> {
    const insert = (db: Db) =>
      db
        .insertInto('sessions')
        .values({ ...row, arrival: sql<number>`(select coalesce(max(arrival), 0) + 1 from sessions)` })
        .returningAll()
        .executeTakeFirstOrThrow();
    if (!isPostgres(this.db)) return insert(this.db);
    return this.db.transaction().execute(async (tx) => {
      await takeTurns(this.db, tx, 'arrival');
      return insert(tx);
    });
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

  /**
   * One page of the newest-first list, after `after` when given. Keyset paging on
   * (created_at, id), served by sessions_created and sessions_user_created: a page costs the
   * same wherever it is in the list, and sessions created between pages never shift it.
   */
  async page(
    filter: { userId?: string; statuses?: readonly SessionStatus[] },
    page: { limit: number; after?: SessionListKey },
  ): Promise<{ rows: SessionsTable[]; more: boolean }> {
    let query = this.db.selectFrom('sessions').selectAll();
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    if (filter.statuses !== undefined && filter.statuses.length > 0) query = query.where('status', 'in', filter.statuses);
    const after = page.after;
    if (after) query = query.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(after.createdAt, after.id)));
    // One more than asked for says whether another page follows.
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit + 1).execute();
    return { rows: rows.slice(0, page.limit), more: rows.length > page.limit };
  }

  async listLive(): Promise<SessionsTable[]> {
    return this.db.selectFrom('sessions').selectAll().where('status', 'in', LIVE_STATUSES).execute();
  }

  /** A user's sessions that are queued, starting or running (SORTIE_MAX_SESSIONS_PER_USER). */
  async countActiveOf(userId: string): Promise<number> {
    const row = await this.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('status', 'in', ACTIVE_STATUSES)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Sessions that hold a workload, counted per app (SORTIE_MAX_SESSIONS and max_sessions). */
  async countLiveByApp(): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom('sessions')
      .select(['app_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('status', 'in', LIVE_STATUSES)
      .groupBy('app_id')
      .execute();
    return new Map(rows.map((r) => [r.app_id, Number(r.n)]));
  }

  /** Every session counted by status and app, for the metrics. */
  async countByStatusAndApp(): Promise<Array<{ status: SessionStatus; app_id: string; count: number }>> {
    const rows = await this.db
      .selectFrom('sessions')
      .select(['status', 'app_id', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['status', 'app_id'])
      .execute();
    return rows.map((r) => ({ status: r.status, app_id: r.app_id, count: Number(r.n) }));
  }

  async countWithStatus(status: SessionStatus): Promise<number> {
    const row = await this.db.selectFrom('sessions').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', status).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** The launch queue, first arrival first. */
  async listQueued(): Promise<SessionsTable[]> {
    return this.db.selectFrom('sessions').selectAll().where('status', '=', 'queued').orderBy('arrival').execute();
  }

  /** Ids of queued sessions, first arrival first: a session's place is its index + 1. */
  async queuedIds(): Promise<string[]> {
    const rows = await this.db.selectFrom('sessions').select('id').where('status', '=', 'queued').orderBy('arrival').execute();
    return rows.map((r) => r.id);
  }

  /** 1-based place of a queued session: one more than the queued sessions that arrived before it. */
  async queuePosition(arrival: number): Promise<number> {
    const row = await this.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'queued')
      .where('arrival', '<', arrival)
      .executeTakeFirstOrThrow();
    return Number(row.n) + 1;
  }

  /** Live sessions nobody has viewed since `cutoff` (ISO time), for SESSION_TIMEOUT. */
  async listLiveIdleSince(cutoff: string): Promise<SessionsTable[]> {
    return this.db
      .selectFrom('sessions')
      .selectAll()
      .where('status', 'in', LIVE_STATUSES)
      .where('last_active_at', '<', cutoff)
      // Pooled sessions wait for a launch by design; nobody is meant to view them yet.
      .where('pool_definition', 'is', null)
      .execute();
  }

  /** Sessions `creating` since before `cutoff` (updated_at is when they became so). */
  async listCreatingSince(cutoff: string): Promise<SessionsTable[]> {
    return this.db.selectFrom('sessions').selectAll().where('status', '=', 'creating').where('updated_at', '<', cutoff).execute();
  }

  /** Those of `ids` that are running with an endpoint and belong to someone (not pooled). */
  async listRunningOf(ids: readonly string[]): Promise<SessionsTable[]> {
    if (ids.length === 0) return [];
    return this.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', 'in', ids)
      .where('status', '=', 'running')
      .where('endpoint', 'is not', null)
      .where('pool_definition', 'is', null)
      .execute();
  }

  /** Live sessions waiting in a warm pool, oldest first. */
  async listPooled(): Promise<SessionsTable[]> {
    return this.db.selectFrom('sessions').selectAll().where('status', 'in', LIVE_STATUSES).where('pool_definition', 'is not', null).orderBy('created_at').orderBy('id').execute();
  }

  /**
   * Hands a running pooled session of `appId`, started from `definition`, to `userId`, or
   * answers undefined when there is none. One UPDATE picks and takes it: the WHERE is checked
   * again on the row it updates (PostgreSQL re-reads a row another claim just took; SQLite has
   * one writer), so two launches never get the same session.
   */
  async claimPooled(appId: string, definition: string, userId: string, at: string): Promise<SessionsTable | undefined> {
    // Claims racing for the same oldest row: the loser tries the next one, a few times.
    for (let attempt = 0; attempt < 3; attempt++) {
      const claimed = await this.db
        .updateTable('sessions')
        .set({ user_id: userId, pool_definition: null, created_at: at, updated_at: at, last_active_at: at })
        .where('id', '=', (eb) =>
          eb
            .selectFrom('sessions')
            .select('id')
            .where('app_id', '=', appId)
            .where('pool_definition', '=', definition)
            .where('status', '=', 'running')
            .orderBy('created_at')
            .orderBy('id')
            .limit(1),
        )
        .where('pool_definition', '=', definition)
        .where('status', '=', 'running')
        .returningAll()
        .executeTakeFirst();
      if (claimed) return claimed;
      const left = await this.db
        .selectFrom('sessions')
        .select('id')
        .where('app_id', '=', appId)
        .where('pool_definition', '=', definition)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (!left) return undefined;
    }
    return undefined;
  }

  async touch(ids: string[], at: string): Promise<void> {
    if (ids.length === 0) return;
    await this.db.updateTable('sessions').set({ last_active_at: at }).where('id', 'in', ids).execute();
  }

  /**
   * Stores the launch steps of a session still `creating` (JSON), computed from `from`, what
   * its row held: a write computed from a list another writer has replaced since changes
   * nothing, so no step is ever written over a newer one, nor onto a session no longer creating.
   */
  async saveProgress(id: string, from: string | null, to: string): Promise<void> {
    await this.db
      .updateTable('sessions')
      .set({ progress: to })
      .where('id', '=', id)
      .where('status', '=', 'creating')
      .where('progress', from === null ? 'is' : '=', from)
      .execute();
  }

  /**
   * Moves a session to `to` only if the move is allowed from the status it has now,
   * checked inside the UPDATE so two writers (an API call and a runner event) cannot
   * both win. Returns the updated row, or undefined when the move was not allowed.
   */
  async transition(
    id: string,
    to: SessionStatus,
    changes: { reason?: string | null; endpoint?: string | null; last_active_at?: string; progress?: string | null } = {},
  ): Promise<SessionsTable | undefined> {
    const allowedFrom = ALL_STATUSES.filter((from) => canTransition(from, to));
    if (allowedFrom.length === 0) return undefined;
    // Launch steps are shown only while queued or creating: a session that moves past them drops its own.
    const progress = to === 'queued' || to === 'creating' ? {} : { progress: null };
    const updated = await this.db
      .updateTable('sessions')
      .set({ status: to, updated_at: new Date().toISOString(), ...progress, ...changes })
      .where('id', '=', id)
      .where('status', 'in', allowedFrom)
      .returningAll()
      .executeTakeFirst();
    return updated;
  }
}
