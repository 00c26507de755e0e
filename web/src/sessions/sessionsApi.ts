import type { Session } from '../contract';
import { request } from '../api/request';

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
export function websocketUrl(session: Pick<Session, 'id' | 'websocket_url'>, page: Pick<Location, 'protocol' | 'host'> = window.location): string {
  const path = session.websocket_url || `/ws/sessions/${encodeURIComponent(session.id)}`;
  if (/^wss?:\/\//.test(path)) return path;
  const scheme = page.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${page.host}${path.startsWith('/') ? '' : '/'}${path}`;
}
