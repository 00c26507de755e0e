import type { SessionsTable } from '../db/schema.js';

export type SessionStatus = SessionsTable['status'];

/** A session as the API shows it: the seed's response shape plus `reason`. */
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

/** `creating` and `running` sessions own a workload; `failed` and `terminated` are final. */
export const LIVE_STATUSES = ['creating', 'running'] as const satisfies readonly SessionStatus[];

/** What counts against SORTIE_MAX_SESSIONS_PER_USER: waiting for room, starting or running. */
export const ACTIVE_STATUSES = ['queued', 'creating', 'running'] as const satisfies readonly SessionStatus[];

export function isLive(status: SessionStatus): boolean {
  return status === 'creating' || status === 'running';
}

/**
 * The allowed moves. Final states never change again, so a late event from a runner
 * (a pod turning Ready after the user already ended the session) cannot resurrect it.
 */
const TRANSITIONS: Record<SessionStatus, readonly SessionStatus[]> = {
  queued: ['creating', 'failed', 'terminated'],
  creating: ['running', 'failed', 'terminated'],
  running: ['failed', 'terminated'],
  failed: [],
  terminated: [],
};

export function canTransition(from: SessionStatus, to: SessionStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export const ALL_STATUSES = Object.keys(TRANSITIONS) as SessionStatus[];

/**
 * The API shape of a row. A queued row's place depends on the rows ahead of it, so the
 * session service fills `queue_position` in; here it is null.
 */
export function toSession(row: SessionsTable): Session {
  return {
    id: row.id,
    user_id: row.user_id,
    app_id: row.app_id,
    app_name: row.app_name,
    pod_name: row.pod_name,
    status: row.status,
    reason: row.reason,
    websocket_url: `/ws/sessions/${row.id}`,
    created_at: row.created_at,
    updated_at: row.updated_at,
    queue_position: null,
  };
}
