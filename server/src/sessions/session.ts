import type { SessionsTable } from '../db/schema.js';
import type { Session, SessionStatus } from '../contract/sessions.js';

// The API shape and the statuses are the contract's; this module adds the server's rules.
export type { Session, SessionStatus } from '../contract/sessions.js';
export { ACTIVE_STATUSES } from '../contract/sessions.js';

/** `creating` and `running` sessions own a workload; `failed` and `terminated` are final. */
export const LIVE_STATUSES = ['creating', 'running'] as const satisfies readonly SessionStatus[];

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
 * session service fills `queue_position` in, and `progress` (stored as JSON text in the row);
 * here both are null.
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
    progress: null,
    ...(row.pool_definition ? { pooled: true as const } : {}),
    recorded: row.recorded === 1,
  };
}
