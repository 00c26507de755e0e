import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { NO_AUDIT, type AuditRecorder } from '../audit/audit-log.js';
import type { AuthConfig } from '../config/config.js';
import { ConflictError, InputError, NotFoundError, UnauthorizedError } from '../errors.js';
import { burnPasswordCheck, hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.js';
import type { Principal } from './principal.js';
import { SignInLimits } from './sign-in-limits.js';
import { newRefreshToken, parseRefreshToken, randomSecret, refreshSecretMatches, TokenSigner } from './tokens.js';
import { toUser, type ActiveLogin, type User, type UserRepository, type UserRow } from './user-repository.js';

export interface IssuedTokens {
  user: User;
  accessToken: string;
  accessExpiresAt: Date;
  refreshToken: string;
  refreshExpiresAt: Date;
}

/**
 * How long after a refresh its replaced token is refused without ending the sign-in: two tabs
 * share one refresh cookie, and when their access token expires both may refresh at once.
 */
const REFRESH_RACE_GRACE_MS = 5_000;

/** Who acts when sign-in is switched off: everyone, with every right. */
export const OPEN_ACCESS_PRINCIPAL: Principal = { userId: 'anonymous', username: 'anonymous', role: 'admin' };

/**
 * Accounts, sign-in and tokens. An access token is a short-lived JWT naming the user and
 * the sign-in; every request also checks that the sign-in is not revoked and the user not
 * disabled, so sign-out and disabling take effect at once, not when the token expires.
 */
export class AuthService {
  private readonly limits: SignInLimits;
  private readonly accessChanged = new Set<() => void>();

  private constructor(
    private readonly users: UserRepository,
    private readonly signer: TokenSigner,
    private readonly config: AuthConfig,
    private readonly logger: Logger,
    private readonly audit: AuditRecorder,
  ) {
    this.limits = new SignInLimits(config.signInLimits);
  }

  static async create(users: UserRepository, config: AuthConfig, logger: Logger, audit: AuditRecorder = NO_AUDIT): Promise<AuthService> {
    // A generated key is kept in the database so restarts (and other replicas) accept old tokens.
    const secret = config.jwtSecret ?? (await users.settingOnce('jwt_secret', randomSecret(48)));
    const service = new AuthService(users, new TokenSigner(secret), config, logger, audit);
    if (config.enabled) await service.bootstrapAdmin();
    return service;
  }

  /**
   * Told after a sign-in ended (sign-out, a reused refresh token), a user was disabled,
   * deleted, given a new password or a new role: what is already open under the old
   * sign-in (desktop streams) is checked again at once, on this replica.
   */
  onAccessChanged(listener: () => void): void {
    this.accessChanged.add(listener);
  }

  private accessHasChanged(): void {
    for (const listener of this.accessChanged) listener();
  }

  get signerForState(): TokenSigner {
    return this.signer;
  }

  /** On the very first start, creates the admin from SORTIE_ADMIN_USERNAME / SORTIE_ADMIN_PASSWORD. */
  private async bootstrapAdmin(): Promise<void> {
    if ((await this.users.count()) > 0) return;
    const password = this.config.adminPassword ?? randomSecret(12);
    const created = await this.users.insert({
      id: randomUUID(),
      username: this.config.adminUsername,
      display_name: 'Administrator',
      role: 'admin',
      password_hash: await hashPassword(password),
      oidc_subject: null,
      created_at: new Date().toISOString(),
    });
    // Another replica starting at the same moment made it: the password that works is in its log.
    if (!created) return;
    if (this.config.adminPassword) {
      this.logger.info({ username: this.config.adminUsername }, 'created the first admin from SORTIE_ADMIN_USERNAME/SORTIE_ADMIN_PASSWORD');
    } else {
      // Shown once, like a first-run setup code; the admin should change it.
      this.logger.warn(
        { username: this.config.adminUsername, password },
        'created the first admin with a generated password (set SORTIE_ADMIN_PASSWORD to choose it); sign in and change it',
      );
    }
  }

  /**
   * Password sign-in from `clientAddress`. Unknown names, wrong passwords and disabled
   * accounts get the same answer after the same argon2 work, so the answer tells nobody
   * which names exist or that a disabled account's password was right. Failures count
   * towards the sign-in limits; over them the answer is TooManyRequestsError.
   */
  async login(username: string, password: string, clientAddress: string): Promise<IssuedTokens> {
    const row = await this.users.byUsername(username);
    // Only the log and the audit log say why a sign-in failed: the answer never does.
    const failed = (reason: string) =>
      this.audit.record({
        action: 'auth.sign_in_failed',
        actor: row ? { userId: row.id, username: row.username, role: row.role } : { unknownName: username },
        address: clientAddress,
        details: { method: 'password', reason },
      });
    // Attempts refused by the limits are not recorded: they cost the caller nothing, so each
    // would be a free row; the failures that set off the lock are recorded.
    const attempt = await this.limits.attempt(row ? this.limits.accountKey(row.id) : this.limits.unknownNameKey(username), clientAddress);
    let passwordRight = false;
    if (row?.password_hash) passwordRight = await verifyPassword(row.password_hash, password);
    else await burnPasswordCheck(password);
    if (!row || !passwordRight || row.disabled) {
      // Only the log says why: the admin who disabled the account can find it there.
      if (row?.disabled && passwordRight) this.logger.info({ userId: row.id, username: row.username, clientAddress }, 'refused sign-in: the account is disabled');
      failed(!row ? 'unknown_user' : !passwordRight ? 'wrong_password' : 'disabled');
      throw new UnauthorizedError('Wrong username or password');
    }
    await attempt.succeeded();
    const issued = await this.issue(row);
    this.audit.record({ action: 'auth.sign_in', actor: { userId: row.id, username: row.username, role: row.role }, address: clientAddress, details: { method: 'password' } });
    return issued;
  }

  /** Signs in a user the identity provider vouched for, creating or updating their account. */
  async loginOidc(identity: { subject: string; username: string; displayName: string; role: 'admin' | 'user' }, clientAddress?: string): Promise<IssuedTokens> {
    let row = await this.users.byOidcSubject(identity.subject);
    if (row) {
      row = await this.users.update(row.id, { role: identity.role, display_name: identity.displayName });
    } else {
      // Keep usernames unique: an OIDC user whose name a local account holds gets a suffix.
      let username = identity.username;
      for (let n = 2; await this.users.byUsername(username); n++) username = `${identity.username}-${n}`;
      const id = randomUUID();
      await this.users.insert({
        id,
        username,
        display_name: identity.displayName,
        role: identity.role,
        password_hash: null,
        oidc_subject: identity.subject,
        created_at: new Date().toISOString(),
      });
      row = await this.users.get(id);
    }
    const actor = row && { userId: row.id, username: row.username, role: row.role };
    if (!actor || row!.disabled) {
      this.audit.record({ action: 'auth.sign_in_failed', actor: actor ?? { unknownName: identity.username }, address: clientAddress, details: { method: 'oidc', reason: 'disabled' } });
      throw new UnauthorizedError('This account is disabled');
    }
    const issued = await this.issue(row!);
    this.audit.record({ action: 'auth.sign_in', actor, address: clientAddress, details: { method: 'oidc' } });
    return issued;
  }


  /**
   * Trades the sign-in's current refresh token for new tokens. Any other token naming a live
   * sign-in is an old one (or forged by someone who saw an access token, which names the
   * sign-in too): whoever holds the current one, thief or owner, loses it, and the whole
   * sign-in ends with every access token issued for it. Only the token replaced moments
   * ago is refused without that, because two tabs sharing one cookie refresh at once.
   */
  async refresh(refreshToken: string): Promise<IssuedTokens> {
    const parsed = parseRefreshToken(refreshToken);
    const now = new Date();
    const active = parsed && (await this.users.activeLogin(parsed.loginId, now.toISOString()));
    if (!parsed || !active) throw new UnauthorizedError('The refresh token is not valid; sign in again');
    if (!refreshSecretMatches(parsed.secret, active.refreshHash)) {
      if (justReplaced(parsed.secret, active, now)) {
        throw new UnauthorizedError('This refresh token was replaced moments ago by another refresh of the same sign-in; use the newer one');
      }
      await this.users.revokeLogin(active.loginId, now.toISOString());
      this.accessHasChanged();
      this.logger.warn({ userId: active.user.id, username: active.user.username, loginId: active.loginId }, 'a replaced refresh token was used again; ended that sign-in in case the token was stolen');
      throw new UnauthorizedError('This refresh token was already used, so the sign-in was ended to protect the account; sign in again');
    }
    const next = newRefreshToken(active.loginId);
    if (!(await this.users.rotateRefresh(active.loginId, active.refreshHash, next.hash, now.toISOString()))) {
      // Another refresh with the same token won by a hair: the same race as justReplaced().
      throw new UnauthorizedError('This refresh token was replaced moments ago by another refresh of the same sign-in; use the newer one');
    }
    const access = await this.signer.signAccess({ sub: active.user.id, sid: active.loginId }, this.config.accessTokenMinutes * 60);
    return {
      user: toUser(active.user),
      accessToken: access.token,
      accessExpiresAt: access.expiresAt,
      refreshToken: next.token,
      refreshExpiresAt: new Date(Date.now() + this.config.refreshTokenHours * 3_600_000),
    };
  }

  async logout(principal: Principal): Promise<void> {
    if (principal.loginId) {
      await this.users.revokeLogin(principal.loginId, new Date().toISOString());
      this.accessHasChanged();
    }
    this.audit.record({ action: 'auth.sign_out', actor: principal });
  }

  /** The principal behind an access token, or UnauthorizedError saying why not. */
  async authenticate(accessToken: string | undefined): Promise<Principal> {
    if (!accessToken) throw new UnauthorizedError('Sign in to use Sortie');
    const verified = await this.signer.verifyAccess(accessToken);
    if (!verified.ok) throw new UnauthorizedError(verified.reason);
    const active = await this.users.activeLogin(verified.claims.sid, new Date().toISOString());
    if (!active || active.user.id !== verified.claims.sub) throw new UnauthorizedError('This sign-in has ended; sign in again');
    return { userId: active.user.id, username: active.user.username, role: active.user.role, loginId: active.loginId, accessExpiresAt: verified.expiresAt };
  }

  async me(principal: Principal): Promise<User> {
    if (!principal.loginId) {
      return { id: principal.userId, username: principal.username, display_name: 'Anonymous', role: principal.role, auth_source: 'local', disabled: false, created_at: new Date(0).toISOString() };
    }
    return toUser(await this.requireUser(principal.userId));
  }

  // Administration

  /** A page of users by username; `next` is the username the following page starts after, null on the last. */
  async listUsers(page: { limit: number; after?: string }): Promise<{ users: User[]; next: string | null }> {
    const { rows, more } = await this.users.page(page);
    const last = rows.at(-1);
    return { users: rows.map(toUser), next: more && last ? last.username : null };
  }

  async createUser(actor: Principal, input: { username: string; password: string; display_name?: string; role: 'admin' | 'user' }): Promise<User> {
    checkPassword(input.password);
    const id = randomUUID();
    const inserted = await this.users.insert({
      id,
      username: input.username,
      display_name: input.display_name?.trim() || input.username,
      role: input.role,
      password_hash: await hashPassword(input.password),
      oidc_subject: null,
      created_at: new Date().toISOString(),
    });
    if (!inserted) throw new ConflictError(`A user named "${input.username}" already exists`);
    this.audit.record({ action: 'user.create', actor, target: { type: 'user', id, name: input.username }, details: { role: input.role } });
    return toUser(await this.requireUser(id));
  }

  async updateUser(actor: Principal, id: string, changes: { display_name?: string; role?: 'admin' | 'user'; password?: string; disabled?: boolean }): Promise<User> {
    const existing = await this.requireUser(id);
    if (changes.password !== undefined) checkPassword(changes.password);
    const demotes = (changes.role === 'user' || changes.disabled === true) && existing.role === 'admin';
    if (demotes && (await this.users.countAdmins()) <= 1) throw new ConflictError('Sortie needs at least one enabled admin');
    if (id === actor.userId && changes.disabled) throw new ConflictError('You cannot disable your own account');
    const updated = await this.users.update(id, {
      ...(changes.display_name !== undefined ? { display_name: changes.display_name } : {}),
      ...(changes.role !== undefined ? { role: changes.role } : {}),
      ...(changes.password !== undefined ? { password_hash: await hashPassword(changes.password) } : {}),
      ...(changes.disabled !== undefined ? { disabled: changes.disabled ? 1 : 0 } : {}),
    });
    // A new password or a disabled account ends every sign-in of that user, except the one
    // through which the user changed their own password.
    if (changes.password !== undefined || changes.disabled) {
      const keep = id === actor.userId && !changes.disabled ? actor.loginId : undefined;
      await this.users.revokeAllLogins(id, new Date().toISOString(), keep);
    }
    if (changes.password !== undefined || changes.disabled !== undefined || changes.role !== undefined) this.accessHasChanged();
    this.auditUpdate(actor, existing, changes);
    return toUser(updated!);
  }

  async deleteUser(actor: Principal, id: string): Promise<void> {
    const existing = await this.requireUser(id);
    if (id === actor.userId) throw new ConflictError('You cannot delete your own account');
    if (existing.role === 'admin' && (await this.users.countAdmins()) <= 1) throw new ConflictError('Sortie needs at least one enabled admin');
    await this.users.delete(id);
    this.accessHasChanged();
    this.audit.record({ action: 'user.delete', actor, target: { type: 'user', id, name: existing.username } });
  }

  async approvals(id: string): Promise<{ app_ids: string[]; categories: string[] }> {
    await this.requireUser(id);
    return this.users.approvals(id);
  }

  async setApprovals(actor: Principal, id: string, approvals: { app_ids: string[]; categories: string[] }): Promise<{ app_ids: string[]; categories: string[] }> {
    const user = await this.requireUser(id);
    await this.users.setApprovals(id, approvals);
    const now = await this.users.approvals(id);
    this.audit.record({ action: 'user.approvals', actor, target: { type: 'user', id, name: user.username }, details: { ...now } });
    return now;
  }

  /** One event per kind of change: a password, enabling or disabling, and the rest (with before and after). */
  private auditUpdate(actor: Principal, before: UserRow, changes: { display_name?: string; role?: 'admin' | 'user'; password?: string; disabled?: boolean }): void {
    const target = { type: 'user' as const, id: before.id, name: before.username };
    if (changes.password !== undefined) this.audit.record({ action: 'user.password', actor, target });
    if (changes.disabled !== undefined && changes.disabled !== Boolean(before.disabled)) {
      this.audit.record({ action: changes.disabled ? 'user.disable' : 'user.enable', actor, target });
    }
    const changed: Record<string, { from: string; to: string }> = {};
    if (changes.role !== undefined && changes.role !== before.role) changed.role = { from: before.role, to: changes.role };
    if (changes.display_name !== undefined && changes.display_name !== before.display_name) changed.display_name = { from: before.display_name, to: changes.display_name };
    if (Object.keys(changed).length > 0) this.audit.record({ action: 'user.update', actor, target, details: changed });
  }

  private async issue(row: UserRow): Promise<IssuedTokens> {
    const loginId = randomUUID();
    const refresh = newRefreshToken(loginId);
    const now = new Date();
    const refreshExpiresAt = new Date(now.getTime() + this.config.refreshTokenHours * 3_600_000);
    await this.users.insertLogin({ id: loginId, user_id: row.id, refresh_hash: refresh.hash, created_at: now.toISOString(), expires_at: refreshExpiresAt.toISOString() });
    const access = await this.signer.signAccess({ sub: row.id, sid: loginId }, this.config.accessTokenMinutes * 60);
    this.logger.info({ userId: row.id, username: row.username }, 'signed in');
    return { user: toUser(row), accessToken: access.token, accessExpiresAt: access.expiresAt, refreshToken: refresh.token, refreshExpiresAt };
  }

  private async requireUser(id: string): Promise<UserRow> {
    const row = await this.users.get(id);
    if (!row) throw new NotFoundError(`No user with id "${id}"`);
    return row;
  }
}

function justReplaced(secret: string, login: ActiveLogin, now: Date): boolean {
  if (!login.previousRefreshHash || !login.refreshedAt) return false;
  return now.getTime() - Date.parse(login.refreshedAt) < REFRESH_RACE_GRACE_MS && refreshSecretMatches(secret, login.previousRefreshHash);
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new InputError(`password must be at least ${MIN_PASSWORD_LENGTH} characters`);
}
