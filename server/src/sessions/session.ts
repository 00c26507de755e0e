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
}

/** `creating` and `running` sessions own a workload; the other two are final. */
export const LIVE_STATUSES = ['creating', 'running'] as const satisfies readonly SessionStatus[];

export function isLive(status: SessionStatus): boolean {
  return status === 'creating' || status === 'running';
}

/**
 * The allowed moves. Final states never change again, so a late event from a runner
 * (a pod turning Ready after the user already ended the session) cannot resurrect it.
 */
const TRANSITIONS: Record<SessionStatus, readonly SessionStatus[]> = {
  creating: ['running', 'failed', 'terminated'],
  running: ['failed', 'terminated'],
  failed: [],
  terminated: [],
};

export function canTransition(from: SessionStatus, to: SessionStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

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
  };
}
