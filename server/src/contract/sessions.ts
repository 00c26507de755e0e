/** Every status a session can have, in the order a session moves through them. */
export const SESSION_STATUSES = ['queued', 'creating', 'running', 'failed', 'terminated'] as const;

export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** What counts against SORTIE_MAX_SESSIONS_PER_USER, and what a person can still open or end. */
export const ACTIVE_STATUSES = ['queued', 'creating', 'running'] as const satisfies readonly SessionStatus[];

/** Queued, starting or running: the session can still be opened and ended. */
export function isActive(status: SessionStatus): boolean {
  return (ACTIVE_STATUSES as readonly SessionStatus[]).includes(status);
}

/** A session as the API shows it: the seed's response shape plus `reason` and `queue_position`. */
export interface Session {
  id: string;
  user_id: string;
  app_id: string;
  app_name: string;
  pod_name: string;
  status: SessionStatus;
  /** Why a session failed or ended, in words a person can act on; null otherwise. */
  reason: string | null;
  websocket_url: string;
  created_at: string;
  updated_at: string;
  /** 1-based place in the launch queue while `queued`; null otherwise. */
  queue_position: number | null;
}

/**
 * A `user_id` in a request (an admin launching for someone, or narrowing a list). Loose on
 * purpose: it also names people when sign-in is off, who have no account.
 */
export const USER_ID_PATTERN = /^[\w.@+-]+$/;
export const USER_ID_MAX_LENGTH = 128;
