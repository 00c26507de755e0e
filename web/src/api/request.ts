/**
 * Every call to the Sortie HTTP API goes through `request`. A failure surfaces as an
 * ApiError whose message is fit to show to a person: the server's own `message` when it
 * sent one.
 */

import { withAuth } from '../auth/refresh';
import { send } from './http';

/** A 401 refreshes the sign-in once and retries. */
export function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  return withAuth(() => send<T>(method, path, body, signal));
}
