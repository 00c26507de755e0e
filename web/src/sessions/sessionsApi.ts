import type { Session, SessionPage, SessionStatus } from '../contract';
import { request } from '../api/request';

/** The server takes the owner from the sign-in. */
export function createSession(appId: string, record?: boolean): Promise<Session> {
  return request<Session>('POST', '/api/sessions', { app_id: appId, ...(record === undefined ? {} : { record }) });
}

export function getSession(id: string, signal?: AbortSignal): Promise<Session> {
  return request<Session>('GET', `/api/sessions/${encodeURIComponent(id)}`, undefined, signal);
}

/**
 * A page of the caller's own sessions, newest first; for an admin, everyone's unless
 * `userId` narrows it. `cursor` is the previous page's `next_cursor`.
 */
export async function listSessions(
  options: { userId?: string; statuses?: readonly SessionStatus[]; cursor?: string; signal?: AbortSignal } = {},
): Promise<SessionPage> {
  const query = new URLSearchParams();
  if (options.userId) query.set('user_id', options.userId);
  if (options.statuses?.length) query.set('status', options.statuses.join(','));
  if (options.cursor) query.set('cursor', options.cursor);
  const search = query.toString() ? `?${query.toString()}` : '';
  const data = await request<Partial<SessionPage>>('GET', `/api/sessions${search}`, undefined, options.signal);
  return { sessions: data?.sessions ?? [], next_cursor: data?.next_cursor ?? null };
}

export function endSession(id: string): Promise<Session> {
  return request<Session>('DELETE', `/api/sessions/${encodeURIComponent(id)}`);
}

/** The relay lives on the same origin; the scheme follows the page so TLS carries over. */
export function websocketUrl(session: Pick<Session, 'id' | 'websocket_url'>, page: Pick<Location, 'protocol' | 'host'> = window.location): string {
  const path = session.websocket_url || `/ws/sessions/${encodeURIComponent(session.id)}`;
  if (/^wss?:\/\//.test(path)) return path;
  const scheme = page.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${page.host}${path.startsWith('/') ? '' : '/'}${path}`;
}
