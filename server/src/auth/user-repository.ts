import type { Db } from '../db/database.js';
import type { User } from '../contract/users.js';
import type { UsersTable } from '../db/schema.js';

export type UserRow = Omit<UsersTable, 'disabled'> & { disabled: number };

/** A user as the API shows it (never the password hash): the contract's shape. */
export type { User } from '../contract/users.js';

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    display_name: row.display_name,
    role: row.role,
    auth_source: row.oidc_subject ? 'oidc' : 'local',
    disabled: row.disabled !== 0,
    created_at: row.created_at,
  };
}

/** A sign-in that is neither revoked nor expired, of an enabled user. */
export interface ActiveLogin {
  loginId: string;
  refreshHash: string;
  /** The refresh token's hash before the last rotation. */
  previousRefreshHash: string | null;
  refreshedAt: string | null;
  user: UserRow;
}

export class UserRepository {
  constructor(private readonly db: Db) {}

  async count(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** One page of users by username, after `after` when given (keyset on the unique username). */
  async page(page: { limit: number; after?: string }): Promise<{ rows: UserRow[]; more: boolean }> {
    let query = this.db.selectFrom('users').selectAll();
    if (page.after !== undefined) query = query.where('username', '>', page.after);
    // One more than asked for says whether another page follows.
    const rows = await query.orderBy('username').limit(page.limit + 1).execute();
    return { rows: rows.slice(0, page.limit), more: rows.length > page.limit };
  }

  async get(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async byUsername(username: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
  }

  async byOidcSubject(subject: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('oidc_subject', '=', subject).executeTakeFirst();
  }

  /** False when the username (or OIDC subject) is taken. */
  async insert(row: Omit<UserRow, 'disabled'> & { disabled?: number }): Promise<boolean> {
    const result = await this.db
      .insertInto('users')
      .values({ ...row, disabled: row.disabled ?? 0 })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async update(id: string, changes: Partial<Pick<UserRow, 'display_name' | 'role' | 'password_hash' | 'disabled'>>): Promise<UserRow | undefined> {
    if (Object.keys(changes).length === 0) return this.get(id);
    return this.db.updateTable('users').set(changes).where('id', '=', id).returningAll().executeTakeFirst();
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async countAdmins(): Promise<number> {
    const row = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', 'admin')
      .where('disabled', '=', 0)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  // Sign-ins

  async insertLogin(row: { id: string; user_id: string; refresh_hash: string; created_at: string; expires_at: string }): Promise<void> {
    await this.db.insertInto('logins').values({ ...row, revoked_at: null, previous_refresh_hash: null, refreshed_at: null }).execute();
  }

  /** The sign-in with its user, if the sign-in is neither revoked nor expired and the user is enabled. */
  async activeLogin(loginId: string, now: string): Promise<ActiveLogin | undefined> {
    const row = await this.db
      .selectFrom('logins')
      .innerJoin('users', 'users.id', 'logins.user_id')
      .selectAll('users')
      .select(['logins.id as login_id', 'logins.refresh_hash', 'logins.previous_refresh_hash', 'logins.refreshed_at'])
      .where('logins.id', '=', loginId)
      .where('logins.revoked_at', 'is', null)
      .where('logins.expires_at', '>', now)
      .where('users.disabled', '=', 0)
      .executeTakeFirst();
    if (!row) return undefined;
    const { login_id, refresh_hash, previous_refresh_hash, refreshed_at, ...user } = row;
    return { loginId: login_id, refreshHash: refresh_hash, previousRefreshHash: previous_refresh_hash, refreshedAt: refreshed_at, user };
  }

  /**
   * Replaces the refresh hash only if it is still `expected`, so one refresh token works once.
   * The replaced hash is kept, with the time, so that presenting it again moments later (two
   * tabs refreshing at once) is not taken for a stolen token.
   */
  async rotateRefresh(loginId: string, expected: string, next: string, at: string): Promise<boolean> {
    const result = await this.db
      .updateTable('logins')
      .set({ refresh_hash: next, previous_refresh_hash: expected, refreshed_at: at })
      .where('id', '=', loginId)
      .where('refresh_hash', '=', expected)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async revokeLogin(loginId: string, at: string): Promise<void> {
    await this.db.updateTable('logins').set({ revoked_at: at }).where('id', '=', loginId).where('revoked_at', 'is', null).execute();
  }

  /** Revokes the user's sign-ins, all of them or all but `exceptLoginId`. */
  async revokeAllLogins(userId: string, at: string, exceptLoginId?: string): Promise<void> {
    let query = this.db.updateTable('logins').set({ revoked_at: at }).where('user_id', '=', userId).where('revoked_at', 'is', null);
    if (exceptLoginId) query = query.where('id', '!=', exceptLoginId);
    await query.execute();
  }

  // Approvals for `approved` apps

  async approvals(userId: string): Promise<{ app_ids: string[]; categories: string[] }> {
    const rows = await this.db.selectFrom('approvals').select(['kind', 'value']).where('user_id', '=', userId).orderBy('value').execute();
    return {
      app_ids: rows.filter((r) => r.kind === 'app').map((r) => r.value),
      categories: rows.filter((r) => r.kind === 'category').map((r) => r.value),
    };
  }

  async setApprovals(userId: string, approvals: { app_ids: string[]; categories: string[] }): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('approvals').where('user_id', '=', userId).execute();
      const rows = [
        ...new Set(approvals.app_ids.map((value) => `app\u0000${value}`)),
        ...new Set(approvals.categories.map((value) => `category\u0000${value}`)),
      ].map((key) => {
        const [kind, value] = key.split('\u0000') as ['app' | 'category', string];
        return { user_id: userId, kind, value };
      });
      if (rows.length > 0) await tx.insertInto('approvals').values(rows).execute();
    });
  }

  // Settings

  async setting(key: string): Promise<string | undefined> {
    return (await this.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())?.value;
  }

  /** Stores `value` unless the key already has one; returns the value that won. */
  async settingOnce(key: string, value: string): Promise<string> {
    await this.db.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
    return (await this.setting(key))!;
  }
}
