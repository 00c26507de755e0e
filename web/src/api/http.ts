/**
 * The bare HTTP layer: one fetch, one JSON body, failures as ApiError with a message
 * fit to show to a person. It knows nothing about sign-in; see auth/refresh.ts for that.
 */

export class ApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when the server could not be reached at all. */
    readonly status: number,
    /** Machine-readable code from the server's error body, if any. */
    readonly code: string | null,
    /** True when `message` is the server's own words rather than a stand-in from this client. */
    readonly fromServer = false,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export async function send<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      signal,
      // Sign-in lives in HttpOnly cookies set by the server; same-origin sends them.
      credentials: 'same-origin',
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

const fallbackByStatus: Partial<Record<number, string>> = {
  401: 'You are not signed in, or your sign-in has expired.',
  403: 'You do not have permission to do that.',
  409: 'That clashes with something that already exists.',
};

function toApiError(res: Response, body: unknown): ApiError {
  let code: string | null = null;
  if (body && typeof body === 'object') {
    const { error, message } = body as { error?: unknown; message?: unknown };
    if (typeof error === 'string') code = error;
    if (typeof message === 'string' && message) return new ApiError(message, res.status, code, true);
  }
  const known = fallbackByStatus[res.status];
  if (known) return new ApiError(known, res.status, code);
  const generic =
    res.status >= 500
      ? `The Sortie server had a problem (HTTP ${res.status}). Try again in a moment.`
      : `Request failed (HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}).`;
  return new ApiError(generic, res.status, code);
}
