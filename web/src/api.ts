/**
 * Typed calls to the Sortie HTTP API. Every failure surfaces as an ApiError whose
 * message is fit to show to a person: the server's own `message` when it sent one.
 */

export type Visibility = 'public' | 'approved' | 'admin_only';
export type LaunchType = 'url' | 'container';
export type SessionStatus = 'creating' | 'running' | 'failed' | 'terminated';

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
}

export class ApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when the server could not be reached at all. */
    readonly status: number,
    /** Machine-readable code from the server's error body, if any. */
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isActive(status: SessionStatus): boolean {
  return status === 'creating' || status === 'running';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ApiError('Cannot reach the Sortie server. Check your connection and try again.', 0, null);
  }
  const text = await res.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // A proxy in front of Sortie may answer with HTML; fall through to a generic message.
    }
  }
  if (!res.ok) throw toApiError(res, parsed);
  return parsed as T;
}

function toApiError(res: Response, body: unknown): ApiError {
  if (body && typeof body === 'object') {
    const { error, message } = body as { error?: unknown; message?: unknown };
    if (typeof message === 'string' && message) {
      return new ApiError(message, res.status, typeof error === 'string' ? error : null);
    }
  }
  const generic =
    res.status >= 500
      ? `The Sortie server had a problem (HTTP ${res.status}). Try again in a moment.`
      : `Request failed (HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}).`;
  return new ApiError(generic, res.status, null);
}

export async function listApps(signal?: AbortSignal): Promise<App[]> {
  const data = await request<{ applications: App[] }>('GET', '/api/apps', undefined, signal);
  return data.applications ?? [];
}

export function createSession(appId: string, userId: string): Promise<Session> {
  return request<Session>('POST', '/api/sessions', { app_id: appId, user_id: userId });
}

export function getSession(id: string, signal?: AbortSignal): Promise<Session> {
  return request<Session>('GET', `/api/sessions/${encodeURIComponent(id)}`, undefined, signal);
}

export async function listSessions(userId: string, signal?: AbortSignal): Promise<Session[]> {
  const data = await request<{ sessions: Session[] }>(
    'GET',
    `/api/sessions?user_id=${encodeURIComponent(userId)}`,
    undefined,
    signal,
  );
  return data.sessions ?? [];
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
