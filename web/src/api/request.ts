/**
 * Typed calls to the Sortie HTTP API. Every failure surfaces as an ApiError whose
 * message is fit to show to a person: the server's own `message` when it sent one.
 */

import { withAuth } from './auth/refresh';
import { send } from './http';

export type Visibility = 'public' | 'approved' | 'admin_only';
export type LaunchType = 'url' | 'container';
export type SessionStatus = 'queued' | 'creating' | 'running' | 'failed' | 'terminated';

export interface ResourceLimits {
  cpu_request: string;
  cpu_limit: string;
  memory_request: string;
  memory_limit: string;
}

export interface App {
  id: string;
  name: string;
  description: string;
  url: string;
  icon: string;
  category: string;
  visibility: Visibility;
  launch_type: LaunchType;
  container_image: string;
  command?: string[];
  resource_limits: ResourceLimits;
  /** At most this many sessions of the app start or run at once; more wait queued. */
  max_sessions?: number;
}

export interface Session {
  id: string;
  user_id: string;
  app_id: string;
  app_name: string;
  pod_name: string;
  status: SessionStatus;
  reason: string | null;
  websocket_url: string;
  created_at: string;
  updated_at: string;
  /** 1-based place in the launch queue while `queued`; null otherwise. */
  queue_position: number | null;
}

export { ApiError, errorMessage } from './http';

/** Queued, starting or running: the session can still be opened and ended. */
export function isActive(status: SessionStatus): boolean {
  return status === 'queued' || status === 'creating' || status === 'running';
}

/** Every API call goes through here: a 401 refreshes the sign-in once and retries. */
export function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  return withAuth(() => send<T>(method, path, body, signal));
}

export async function listApps(signal?: AbortSignal): Promise<App[]> {
  const data = await request<{ applications: App[] }>('GET', '/api/apps', undefined, signal);
  return data?.applications ?? [];
}

/** The server takes the owner from the sign-in. */
export function createSession(appId: string): Promise<Session> {
  return request<Session>('POST', '/api/sessions', { app_id: appId });
}

export function getSession(id: string, signal?: AbortSignal): Promise<Session> {
  return request<Session>('GET', `/api/sessions/${encodeURIComponent(id)}`, undefined, signal);
}

/**
 * The caller's own sessions; for an admin, everyone's unless `userId` narrows it.
 */
export async function listSessions(options: { userId?: string; signal?: AbortSignal } = {}): Promise<Session[]> {
  const query = options.userId ? `?user_id=${encodeURIComponent(options.userId)}` : '';
  const data = await request<{ sessions: Session[] }>('GET', `/api/sessions${query}`, undefined, options.signal);
  return data?.sessions ?? [];
}

export function endSession(id: string): Promise<Session> {
  return request<Session>('DELETE', `/api/sessions/${encodeURIComponent(id)}`);
}

/** The relay lives on the same origin; the scheme follows the page so TLS carries over. */
export function websocketUrl(session: Session): string {
  const path = session.websocket_url || `/ws/sessions/${encodeURIComponent(session.id)}`;
  if (/^wss?:\/\//.test(path)) return path;
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}${path.startsWith('/') ? '' : '/'}${path}`;
}
