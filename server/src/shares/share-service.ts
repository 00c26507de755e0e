import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { Principal } from '../auth/principal.js';
import type { UserRepository } from '../auth/user-repository.js';
import type { CloseCodeValue } from '../contract/close-codes.js';
import { CloseCode } from '../contract/close-codes.js';
import type { Session, SessionStatus } from '../contract/sessions.js';
import { SHARE_LINK_MINUTES_DEFAULT, type CreatedShare, type RedeemedShare, type SessionShare, type SessionSharesPage, type SessionWatcher, type ShareMode } from '../contract/shares.js';
import type { SessionsTable } from '../db/schema.js';
import { ConflictError, ForbiddenError, InputError, NotFoundError } from '../errors.js';
import type { Endpoint } from '../runners/runner.js';
import type { SessionFeed } from '../sessions/session-feed.js';
import type { SessionRepository } from '../sessions/session-repository.js';
import { isActive } from '../contract/sessions.js';
import { toSession } from '../sessions/session.js';
import type { ShareRepository, ShareRow } from './share-repository.js';

export interface ShareServiceOptions {
  shares: ShareRepository;
  sessions: SessionRepository;
  users: UserRepository;
  /** Where a share change is announced: every replica's relay re-checks its shared streams, every owner's UI reloads. */
  feed: SessionFeed;
  logger: Logger;
  audit?: AuditRecorder;
  now?: () => Date;
  /** How often open watches are marked alive and re-checked without a notice (a missed one). Default 10 s. */
  sweepIntervalMs?: number;
}

/** What a share holder may do with a session: whose it is and how. */
export interface Grant {
  mode: ShareMode;
  owner: string;
  share: ShareRow;
}

/** One open stream of someone else's session on this replica. */
interface Watch {
  watcherId: string;
  sessionId: string;
  viewer: Principal;
  via: 'share' | 'admin';
  mode: ShareMode;
  close: (code: CloseCodeValue, reason: string) => void;
  expiry?: NodeJS.Timeout;
}

/** A stream a share holder may open: where to, and how. */
export interface SharedStream {
  session: SessionsTable;
  /** Absent while the session is not running. */
  endpoint?: Endpoint;
  secret?: string;
  grant: Grant;
}

/** Watchers whose replica has not refreshed them for this long are taken as gone. */
const WATCHER_STALE_MS = 45_000;

/**
 * Shares of live sessions: who may watch or control someone else's session, the links that
 * grant that to whoever signs in and opens them, and who is watching now.
 *
 * Revocation reaches open streams on every replica through the session feed (NOTIFY/LISTEN
 * on PostgreSQL): a change to a session's shares is published as a change of the session,
 * and each replica re-checks the share behind each of its open streams of that session,
 * which costs one query per shared stream per change and nothing while nothing changes.
 * A periodic re-check catches a notice lost while the channel was down.
 */
export class ShareService {
  private readonly now: () => Date;
  private readonly watches = new Map<string, Set<Watch>>();
  private unsubscribe: (() => void) | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly o: ShareServiceOptions) {
    this.now = o.now ?? (() => new Date());
  }

  start(): void {
    this.unsubscribe = this.o.feed.subscribe((event) => {
      if (event.type === 'resync') return void this.recheckAll();
      if (this.watches.has(event.change.id)) void this.recheck(event.change.id);
    });
    this.sweeper = setInterval(() => void this.sweep(), this.o.sweepIntervalMs ?? 10_000);
    this.sweeper.unref();
  }

  close(): void {
    this.unsubscribe?.();
    clearInterval(this.sweeper);
    for (const set of this.watches.values()) for (const watch of set) clearTimeout(watch.expiry);
  }

  /** POST /api/sessions/{id}/shares */
  async create(principal: Principal, sessionId: string, input: { user?: string; link?: true; mode: ShareMode; expiresInMinutes?: number }): Promise<CreatedShare> {
    const session = await this.managed(principal, sessionId);
    if (!isActive(session.status)) throw new ConflictError(`The session has ${session.status === 'failed' ? 'failed' : 'ended'}; only a live session can be shared`);
    const at = this.now();
    const base = { id: randomUUID(), session_id: sessionId, mode: input.mode, link_id: null, created_by: principal.userId, created_at: at.toISOString(), ended_at: null };
    let row: ShareRow;
    let token: string | undefined;
    if (input.user !== undefined) {
      const user = await this.o.users.byUsername(input.user);
      if (!user) throw new InputError(`user: there is no user named "${input.user}"`);
      if (user.id === session.user_id) throw new InputError(`user: "${input.user}" owns this session; share it with someone else`);
      if (user.id === principal.userId) throw new InputError('user: you cannot share a session with yourself');
      if (user.disabled) throw new InputError(`user: "${input.user}" is disabled and cannot sign in`);
      const held = await this.o.shares.heldBy(user.id, at.toISOString(), sessionId);
      const same = held.find((share) => share.link_id === null);
      if (same) throw new ConflictError(`The session is already shared with "${input.user}" (${same.mode}); revoke that share to change it`);
      row = { ...base, kind: 'user', user_id: user.id, token_hash: null, expires_at: null };
    } else {
      token = randomBytes(32).toString('base64url');
      const minutes = input.expiresInMinutes ?? SHARE_LINK_MINUTES_DEFAULT;
      row = { ...base, kind: 'link', user_id: null, token_hash: hashToken(token), expires_at: new Date(at.getTime() + minutes * 60_000).toISOString() };
    }
    await this.o.shares.insert(row);
    this.o.audit?.record({
      action: 'session.share_create',
      actor: principal,
      target: { type: 'session', id: sessionId, name: session.app_name },
      details: { share_id: row.id, kind: row.kind, mode: row.mode, ...(input.user ? { user: input.user } : {}), ...(row.expires_at ? { expires_at: row.expires_at } : {}) },
    });
    this.announce(session);
    const shown = await this.present([row], []);
    return { ...shown[0]!, ...(token ? { token, url: `/#/share/${token}` } : {}) };
  }

  /** GET /api/sessions/{id}/shares */
  async list(principal: Principal, sessionId: string): Promise<SessionSharesPage> {
    const session = await this.managed(principal, sessionId);
    // An ended session's shares end with it (endAllOf), a moment after the end is answered:
    // none is shown meanwhile, nor if that clean-up failed.
    if (!isActive(session.status)) return { shares: [], watchers: [] };
    const now = this.now().toISOString();
    const [rows, watchers] = await Promise.all([this.o.shares.activeOf(sessionId, now), this.watcherRows(sessionId)]);
    return { shares: await this.present(rows, watchers), watchers: watchers.map(toWatcher) };
  }

  /** DELETE /api/sessions/{id}/shares/{share_id}: the share (and, for a link, what was redeemed from it) ends, and its streams are cut. */
  async revoke(principal: Principal, sessionId: string, shareId: string): Promise<void> {
    const session = await this.managed(principal, sessionId);
    const share = await this.o.shares.get(shareId);
    if (!share || share.session_id !== sessionId) throw new NotFoundError(`This session has no share with id "${shareId}"`);
    const ended = await this.o.shares.end(shareId, this.now().toISOString());
    if (ended.length === 0) return;
    this.o.audit?.record({
      action: 'session.share_revoke',
      actor: principal,
      target: { type: 'session', id: sessionId, name: session.app_name },
      details: { share_id: shareId, kind: share.kind, mode: share.mode, ended: ended.length },
    });
    this.announce(session);
    // This replica's streams at once; the others' when the notice reaches them.
    await this.recheck(sessionId);
  }

  /** POST /api/shares/redeem: a signed-in person opens a link and gains a share of their own. */
  async redeem(principal: Principal, token: string): Promise<RedeemedShare> {
    const gone = new NotFoundError('This share link is unknown, revoked or expired; ask for a new one');
    const link = await this.o.shares.byTokenHash(hashToken(token));
    const now = this.now().toISOString();
    if (!link || link.kind !== 'link' || link.ended_at !== null || (link.expires_at !== null && link.expires_at <= now)) throw gone;
    const session = await this.o.sessions.get(link.session_id);
    if (!session || !isActive(session.status)) throw gone;
    if (session.user_id === principal.userId) return { session_id: session.id, mode: 'control' };
    const held = await this.o.shares.heldBy(principal.userId, now, session.id);
    const existing = held.find((share) => share.link_id === link.id);
    if (!existing) {
      const row: ShareRow = {
        id: randomUUID(),
        session_id: session.id,
        kind: 'user',
        mode: link.mode,
        user_id: principal.userId,
        token_hash: null,
        link_id: link.id,
        created_by: link.created_by,
        created_at: now,
        expires_at: link.expires_at,
        ended_at: null,
      };
      await this.o.shares.insert(row);
      this.o.audit?.record({
        action: 'session.share_redeem',
        actor: principal,
        target: { type: 'session', id: session.id, name: session.app_name },
        details: { share_id: row.id, link_id: link.id, mode: link.mode, expires_at: link.expires_at },
      });
      this.announce(session);
    }
    return { session_id: session.id, mode: bestOf([...held, link]).mode };
  }

  /** What the caller's shares of a session allow, if it is live and they hold one. */
  async grantFor(principal: Principal, sessionId: string, session?: SessionsTable): Promise<Grant | undefined> {
    const held = await this.o.shares.heldBy(principal.userId, this.now().toISOString(), sessionId);
    if (held.length === 0) return undefined;
    const row = session ?? (await this.o.sessions.get(sessionId));
    if (!row || !isActive(row.status)) return undefined;
    const share = bestOf(held);
    return { mode: share.mode, owner: await this.usernameOf(row.user_id), share };
  }

  /** A session shared with the caller, as GET /api/sessions/{id} shows it; undefined when it is not. */
  async sharedSession(principal: Principal, sessionId: string): Promise<Session | undefined> {
    const row = await this.o.sessions.get(sessionId);
    if (!row || row.user_id === principal.userId) return undefined;
    const grant = await this.grantFor(principal, sessionId, row);
    return grant && { ...toSession(row), shared_with_me: { owner: grant.owner, mode: grant.mode } };
  }

  /** Every session shared with the caller now, marked so, newest first. */
  async sharedSessions(principal: Principal, statuses?: readonly SessionStatus[]): Promise<Session[]> {
    const held = await this.o.shares.heldBy(principal.userId, this.now().toISOString());
    const out: Session[] = [];
    for (const sessionId of new Set(held.map((share) => share.session_id))) {
      const session = await this.sharedSession(principal, sessionId);
      if (session && (!statuses || statuses.includes(session.status))) out.push(session);
    }
    return out.sort((a, b) => (a.created_at === b.created_at ? b.id.localeCompare(a.id) : b.created_at.localeCompare(a.created_at)));
  }

  /** Who other than the owner is watching a session now, for its owner and admins. */
  async watchersOf(sessionId: string): Promise<SessionWatcher[]> {
    return (await this.watcherRows(sessionId)).map(toWatcher);
  }

  /** Where a share holder's stream goes; undefined when the caller holds no share of a running session. */
  async sharedStream(principal: Principal, sessionId: string): Promise<SharedStream | undefined> {
    const row = await this.o.sessions.get(sessionId);
    if (!row || row.user_id === principal.userId) return undefined;
    const grant = await this.grantFor(principal, sessionId, row);
    if (!grant) return undefined;
    if (row.status !== 'running' || !row.endpoint) return { session: row, grant };
    const at = row.endpoint.lastIndexOf(':');
    return { session: row, endpoint: { host: row.endpoint.slice(0, at), port: Number(row.endpoint.slice(at + 1)) }, ...(row.stream_secret ? { secret: row.stream_secret } : {}), grant };
  }

  /**
   * For the relay's `onOpen`: records a stream of someone else's session (a share holder's or
   * an admin's) while it is open, so its owner sees it, and keeps the means to cut it when its
   * share ends. Answers what to call when the stream ends.
   */
  watch(session: { id: string; user_id: string; app_name: string }, viewer: Principal, via: 'share' | 'admin', mode: ShareMode, expiresAt?: string | null) {
    return (close: Watch['close']): (() => void) => {
      const watch: Watch = { watcherId: randomUUID(), sessionId: session.id, viewer, via, mode, close };
      let set = this.watches.get(session.id);
      if (!set) this.watches.set(session.id, (set = new Set()));
      set.add(watch);
      if (expiresAt) {
        const ms = Date.parse(expiresAt) - this.now().getTime();
        watch.expiry = setTimeout(() => close(CloseCode.ShareEnded, 'Your share of this session has expired'), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
        watch.expiry.unref();
      }
      const at = this.now().toISOString();
      const target = { type: 'session' as const, id: session.id, name: session.app_name };
      this.o.audit?.record({ action: 'session.watch_open', actor: viewer, target, details: { via, mode, owner: session.user_id } });
      if (via === 'admin' && mode === 'control') this.o.audit?.record({ action: 'session.take_control', actor: viewer, target, details: { owner: session.user_id } });
      const added = this.o.shares
        .addWatcher({ id: watch.watcherId, session_id: session.id, user_id: viewer.userId, username: viewer.username, mode, via, opened_at: at, seen_at: at })
        .then(() => this.announce(session))
        .catch((err: unknown) => this.o.logger.warn({ err, sessionId: session.id }, 'could not record a watcher'));
      const opened = Date.now();
      return () => {
        clearTimeout(watch.expiry);
        set.delete(watch);
        if (set.size === 0 && this.watches.get(session.id) === set) this.watches.delete(session.id);
        this.o.audit?.record({ action: 'session.watch_close', actor: viewer, target, details: { via, mode, seconds: Math.round((Date.now() - opened) / 1000) } });
        void added
          .then(() => this.o.shares.removeWatcher(watch.watcherId))
          .then(() => this.announce(session))
          .catch((err: unknown) => this.o.logger.warn({ err, sessionId: session.id }, 'could not forget a watcher'));
      };
    };
  }

  /** The session ended: so did every share of it (its streams are cut with the session). */
  async endAllOf(session: Pick<SessionsTable, 'id' | 'app_name'>): Promise<void> {
    const ended = await this.o.shares.endAllOf(session.id, this.now().toISOString());
    for (const share of ended) {
      this.o.audit?.record({
        action: 'session.share_end',
        actor: 'system',
        target: { type: 'session', id: session.id, name: session.app_name },
        details: { share_id: share.id, kind: share.kind, mode: share.mode },
      });
    }
  }

  /** Cuts this replica's streams of a session whose share no longer holds (or no longer allows their mode). */
  private async recheck(sessionId: string): Promise<void> {
    for (const watch of [...(this.watches.get(sessionId) ?? [])]) {
      if (watch.via !== 'share') continue;
      try {
        const grant = await this.grantFor(watch.viewer, sessionId);
        if (!grant) watch.close(CloseCode.ShareEnded, 'Your share of this session was revoked or has ended');
        else if (grant.mode !== watch.mode) watch.close(CloseCode.ShareEnded, `Your share of this session changed to ${grant.mode}; reconnect`);
      } catch (err) {
        this.o.logger.warn({ err, sessionId }, 'could not re-check a shared stream');
      }
    }
  }

  private async recheckAll(): Promise<void> {
    for (const sessionId of [...this.watches.keys()]) await this.recheck(sessionId);
  }

  private async sweep(): Promise<void> {
    try {
      const ids = [...this.watches.values()].flatMap((set) => [...set].map((watch) => watch.watcherId));
      const now = this.now();
      await this.o.shares.touchWatchers(ids, now.toISOString());
      await this.o.shares.pruneWatchers(new Date(now.getTime() - WATCHER_STALE_MS).toISOString());
      await this.recheckAll();
    } catch (err) {
      this.o.logger.warn({ err }, 'share sweep failed');
    }
  }

  private announce(session: Pick<SessionsTable, 'id' | 'user_id'> & { status?: SessionStatus }): void {
    void (async () => {
      const status = session.status ?? (await this.o.sessions.get(session.id))?.status;
      if (status) this.o.feed.publish({ id: session.id, user_id: session.user_id, status });
    })().catch((err: unknown) => this.o.logger.warn({ err, sessionId: session.id }, 'could not announce a share change'));
  }

  /** The session, when the caller may manage its shares: its owner or an admin. A share holder is told so; anyone else finds no session. */
  private async managed(principal: Principal, sessionId: string): Promise<SessionsTable> {
    const row = await this.o.sessions.get(sessionId);
    const missing = new NotFoundError(`No session with id "${sessionId}"`);
    if (!row) throw missing;
    if (principal.role === 'admin' || row.user_id === principal.userId) return row;
    if (await this.grantFor(principal, sessionId, row)) throw new ForbiddenError("Only the session's owner or an admin can see and change its shares");
    throw missing;
  }

  private async watcherRows(sessionId: string) {
    return this.o.shares.watchersOf(sessionId, new Date(this.now().getTime() - WATCHER_STALE_MS).toISOString());
  }

  private async present(rows: ShareRow[], watchers: { user_id: string; via: string }[]): Promise<SessionShare[]> {
    const watching = new Set(watchers.filter((w) => w.via === 'share').map((w) => w.user_id));
    return Promise.all(
      rows.map(async (row) => ({
        id: row.id,
        kind: row.kind,
        mode: row.mode,
        user: row.user_id ? { id: row.user_id, username: await this.usernameOf(row.user_id) } : null,
        link_id: row.link_id,
        created_at: row.created_at,
        expires_at: row.expires_at,
        watching: row.user_id !== null && watching.has(row.user_id),
      })),
    );
  }

  private async usernameOf(userId: string): Promise<string> {
    return (await this.o.users.get(userId))?.username ?? userId;
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Control outranks view when someone holds more than one share of a session. */
function bestOf(shares: ShareRow[]): ShareRow {
  return shares.find((share) => share.mode === 'control') ?? shares[0]!;
}

function toWatcher(row: { username: string; mode: ShareMode; via: 'share' | 'admin'; opened_at: string }): SessionWatcher {
  return { username: row.username, mode: row.mode, via: row.via, opened_at: row.opened_at };
}
