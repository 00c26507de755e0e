import { ApiException } from '@kubernetes/client-node';

/** The HTTP status of a failed API call, or undefined when the call never got an answer. */
export function apiStatusCode(err: unknown): number | undefined {
  return err instanceof ApiException ? (err.code as number) : undefined;
}

/**
 * The API server's own explanation (the Status object's `message`), which is what a person
 * can act on; ApiException's message is a dump of code, body and headers.
 */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    let status: unknown = body;
    if (typeof body === 'string') {
      try {
        status = JSON.parse(body);
      } catch {
        return body.trim() || `HTTP ${err.code}`;
      }
    }
    if (status && typeof status === 'object' && typeof (status as { message?: unknown }).message === 'string') {
      return (status as { message: string }).message;
    }
    return `HTTP ${err.code}`;
  }
  return err instanceof Error ? err.message : String(err);
}
