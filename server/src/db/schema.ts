import type { Generated } from 'kysely';
import type { Clipboard, FileTransfer, LaunchType, RecordingMode, Role, SessionStatus, Visibility } from '../contract/index.js';

/** Row shapes as stored. Timestamps are ISO-8601 strings so SQLite and PostgreSQL agree. */
export interface SessionsTable {
  id: string;
  user_id: string;
  app_id: string;
  app_name: string;
  pod_name: string;
  status: SessionStatus;
  reason: string | null;
  /** `host:port` of the session's websockify, known once running. Never sent to clients. */
  endpoint: string | null;
  created_at: string;
  updated_at: string;
  /** Last time a viewer was connected; SESSION_TIMEOUT counts idle time from here. */
  last_active_at: string;
  /** The session's VNC password. Sortie answers the VNC server's challenge with it; it never leaves the server. */
  stream_secret: string | null;
  /**
   * Arrival order, one more than the highest so far; the launch queue starts sessions in
   * this order. Null for sessions created before the queue existed (none of them is queued).
   */
  arrival: number | null;
  /**
   * While the session waits in its app's warm pool, unassigned: a digest of the app definition
   * it was started from (a pool of an edited app is replaced). Null once someone owns it.
   */
  pool_definition?: string | null;
  /** 1 when the session's stream is recorded (its app's `recording`, and the launch's choice when `optional`). */
  recorded?: number;
  /**
   * The launch's steps (a JSON LaunchStep[]) while queued or creating, written by the replica
   * watching the launch and read by any; null when there is none, and once the session runs or has ended.
   */
  progress?: string | null;
}

export interface AppsTable {
  id: string;
  name: string;
  description: string;
  url: string;
  icon: string;
  category: string;
  visibility: Visibility;
  launch_type: LaunchType;
  container_image: string;
  /** JSON array of strings, or null. */
  command: string | null;
  /** JSON object with cpu_request, cpu_limit, memory_request, memory_limit. */
  resource_limits: string;
  /** How many sessions of this app may be starting or running at once; null for no limit. */
  max_sessions: number | null;
  /** 1 when the session's home is the user's own and outlives it, else 0. */
  persistent_home: number;
  /** `both`, `upload`, `download` or `none`: which ways the file API may move files. */
  file_transfer: FileTransfer;
  /** `both`, `to_session`, `from_session` or `none`: which ways the session's clipboard may move text. */
  clipboard: Clipboard;
  /** Sessions kept started and unassigned for the next launches (the warm pool); 0 for none. */
  warm_pool: number;
  /** `off`, `always` or `optional`: whether Sortie records the app's sessions. */
  recording: RecordingMode;
  position: Generated<number>;
  /** `file` for apps from apps.json, `api` for apps created or edited by an admin. */
  source: Generated<'file' | 'api'>;
}

export interface UsersTable {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  /** argon2id hash; null for users who sign in only through OIDC. */
  password_hash: string | null;
  /** `<issuer>#<sub>` for users who came through OIDC. */
  oidc_subject: string | null;
  disabled: Generated<number>;
  created_at: string;
}

export interface LoginsTable {
  id: string;
  user_id: string;
  refresh_hash: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  /** The refresh token's hash before the last rotation; null until the first refresh. */
  previous_refresh_hash: string | null;
  /** When the refresh token was last rotated. */
  refreshed_at: string | null;
}

export interface ApprovalsTable {
  user_id: string;
  kind: 'app' | 'category';
  value: string;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface AuditEventsTable {
  /** Sorts in recording order within one replica: the time, a counter, then randomness. */
  id: string;
  at: string;
  actor_type: 'user' | 'system' | 'unknown';
  actor_id: string | null;
  actor_name: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  target_name: string | null;
  address: string | null;
  /** A small JSON object. */
  details: string;
}

/** A session's recording: its file is `<data dir>/recordings/<id>.rec`. */
export interface RecordingsTable {
  id: string;
  session_id: string;
  user_id: string;
  app_id: string;
  app_name: string;
  started_at: string;
  /** Null while a segment is being written. */
  ended_at: string | null;
  /** Milliseconds from started_at to the last recorded bytes; bigint (a string on PostgreSQL). */
  duration_ms: number | string;
  size_bytes: number | string;
  segments: number;
  /** Why the recording has a gap or stops early (the disk could not keep up, Sortie stopped); null when whole. */
  incomplete: string | null;
}

/** A share of a live session: with a user, or a link whose redemptions are user shares naming it. */
export interface SessionSharesTable {
  id: string;
  session_id: string;
  kind: 'user' | 'link';
  mode: 'view' | 'control';
  /** The user it is shared with; null for a link. */
  user_id: string | null;
  /** SHA-256 (hex) of a link's token; null for a user share. */
  token_hash: string | null;
  /** The link a user share came from, when it was redeemed from one. */
  link_id: string | null;
  created_by: string;
  created_at: string;
  expires_at: string | null;
  /** When it was revoked or its session ended; null while it holds. */
  ended_at: string | null;
}

/** A stream of someone else's session open now (a share holder's or an admin's). */
export interface SessionWatchersTable {
  id: string;
  session_id: string;
  user_id: string;
  username: string;
  mode: 'view' | 'control';
  via: 'share' | 'admin';
  opened_at: string;
  seen_at: string;
}

export interface Database {
  sessions: SessionsTable;
  apps: AppsTable;
  users: UsersTable;
  logins: LoginsTable;
  approvals: ApprovalsTable;
  settings: SettingsTable;
  audit_events: AuditEventsTable;
  session_shares: SessionSharesTable;
  session_watchers: SessionWatchersTable;
  recordings: RecordingsTable;
}
