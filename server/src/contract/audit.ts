import type { Page } from './pages.js';

/**
 * The audit log as the API shows it: who did what to what, when and from where. Every
 * action Sortie records is named here, so the admin page's filter and the server agree.
 */
export const AUDIT_ACTIONS = [
  'auth.sign_in',
  'auth.sign_in_failed',
  'auth.sign_out',
  'session.launch',
  'session.end',
  'session.stream_open',
  'session.stream_close',
  'session.share_create',
  'session.share_redeem',
  'session.share_revoke',
  'session.share_end',
  'session.watch_open',
  'session.watch_close',
  'session.take_control',
  'app.create',
  'app.update',
  'app.delete',
  'catalog.load',
  'user.create',
  'user.update',
  'user.password',
  'user.disable',
  'user.enable',
  'user.delete',
  'user.approvals',
  'user.home_delete',
  'recording.start',
  'recording.stop',
  'recording.play',
  'recording.download',
  'recording.delete',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** The groups the filter offers: `session.*` asks for every session action. */
export const AUDIT_ACTION_GROUPS = ['auth', 'session', 'app', 'catalog', 'user', 'recording'] as const;

/** `session.end`'s `details.by`: who or what ended the session. */
/** `warm_pool`: an unclaimed pooled session ended by its pool (app changed or removed, pool shrunk, room given to a queued launch). */
export const SESSION_ENDED_BY = ['user', 'admin', 'idle_timeout', 'failure', 'runner', 'warm_pool'] as const;
export type SessionEndedBy = (typeof SESSION_ENDED_BY)[number];

/**
 * `user`: a signed-in person (or `anonymous` when sign-in is off); `system`: Sortie on its
 * own (an idle timeout, a failure, the catalog file); `unknown`: a failed sign-in whose name
 * has no account.
 */
export type AuditActorType = 'user' | 'system' | 'unknown';

export interface AuditEvent {
  id: string;
  /** ISO-8601. */
  at: string;
  actor_type: AuditActorType;
  /** The user's id; null for `system` and `unknown`. */
  actor_id: string | null;
  /** The username, `system`, or the name a failed sign-in gave. */
  actor_name: string;
  action: AuditAction;
  /** `session`, `app`, `user` or `catalog`; null when the action has no object. */
  target_type: string | null;
  target_id: string | null;
  /** A readable name of the target (the app's name, the username), when known. */
  target_name: string | null;
  /** The client address as Sortie decides it (SORTIE_TRUSTED_PROXIES); null for `system`. */
  address: string | null;
  details: Record<string, unknown>;
}

/** GET /api/admin/audit: newest first, paged like every list (contract/pages.ts). */
export interface AuditPage extends Page {
  events: AuditEvent[];
}
