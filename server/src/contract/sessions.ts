import type { SessionWatcher, SharedWithMe } from './shares.js';

/** Every status a session can have, in the order a session moves through them. */
export const SESSION_STATUSES = ['queued', 'creating', 'running', 'failed', 'terminated'] as const;

export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** What counts against SORTIE_MAX_SESSIONS_PER_USER, and what a person can still open or end. */
export const ACTIVE_STATUSES = ['queued', 'creating', 'running'] as const satisfies readonly SessionStatus[];

/** Queued, starting or running: the session can still be opened and ended. */
export function isActive(status: SessionStatus): boolean {
  return (ACTIVE_STATUSES as readonly SessionStatus[]).includes(status);
}

/** A session as the API shows it: the seed's response shape plus `reason`, `queue_position` and `progress`. */
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
  /**
   * What a launch is doing, step by step, while `queued` or `creating` (possibly empty
   * before the first step is known); null once the session runs or has ended.
   */
  progress: LaunchStep[] | null;
  /** Present (true) only on a session waiting in its app's warm pool, owned by nobody yet: admins alone see those. */
  pooled?: true;
  /** Whether Sortie records the session's stream (see the app's `recording`); viewers say so. Always sent. */
  recorded?: boolean;
  /** Present only on someone else's session shared with the caller: whose it is and what the share allows. */
  shared_with_me?: SharedWithMe;
  /** Present for the owner (and admins) while others watch: who, how, and since when. */
  watched_by?: SessionWatcher[];
}

/**
 * The steps of a launch, in the order they happen: Sortie's own launch queue, a node for the
 * pod, the app's image and containers, then the desktop. The local runner has no node or
 * image; it starts the desktop and then the app.
 */
export const LAUNCH_STEPS = ['queued', 'scheduling', 'pulling', 'starting', 'app'] as const;

export type LaunchStepName = (typeof LAUNCH_STEPS)[number];

/** What each step is called where a person reads it. */
export const LAUNCH_STEP_LABELS: Readonly<Record<LaunchStepName, string>> = {
  queued: 'Waiting for room',
  scheduling: 'Waiting for a node',
  pulling: 'Preparing the app',
  starting: 'Starting the desktop',
  app: 'Starting the app',
};

/** One step of a launch; `ended_at` is null for the step under way. */
export interface LaunchStep {
  step: LaunchStepName;
  label: string;
  started_at: string;
  ended_at: string | null;
}

/**
 * A `user_id` in a request (an admin launching for someone, or narrowing a list). Loose on
 * purpose: it also names people when sign-in is off, who have no account.
 */
export const USER_ID_PATTERN = /^[\w.@+-]+$/;
export const USER_ID_MAX_LENGTH = 128;
