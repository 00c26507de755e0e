import { ApiError, send } from '../api/http';
import type { SignInResult, User } from './types';

/**
 * Access tokens are short-lived cookies. When a call answers 401, the refresh cookie
 * buys a new one once (shared by every call that hit the 401 at the same time) and the
 * call is retried; when that fails too, the sign-in is over and listeners hear about it.
 */

interface Listeners {
  /** A refresh succeeded; the user record may have changed (role, name). */
  onRefreshed?: (user: User) => void;
  /** Refreshing failed: the person has to sign in again. */
  onExpired?: () => void;
}

let listeners: Listeners = {};
let inflight: Promise<boolean> | null = null;
/** Bumped after every successful refresh, so a 401 to a request sent before it just retries. */
let generation = 0;

export function setAuthListeners(next: Listeners): () => void {
  listeners = next;
  return () => {
    if (listeners === next) listeners = {};
  };
}

/** True when the refresh cookie bought a new access token, false when it is no good. Network failures throw. */
export function refreshSession(): Promise<boolean> {
  inflight ??= send<SignInResult>('POST', '/api/auth/refresh')
    .then(
      (result) => {
        generation++;
        if (result?.user) listeners.onRefreshed?.(result.user);
        return true;
      },
      (err: unknown) => {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) return false;
        throw err;
      },
    )
    .finally(() => {
      inflight = null;
    });
  return inflight;
}

function expired(): ApiError {
  listeners.onExpired?.();
  return new ApiError('Your sign-in has expired. Sign in again to continue.', 401, 'unauthorized');
}

function isUnauthorized(err: unknown): boolean {
  return err instanceof ApiError && err.status === 401;
}

/** Runs `call`; on a 401 refreshes once and runs it again. */
export async function withAuth<T>(call: () => Promise<T>): Promise<T> {
  const sentAt = generation;
  try {
    return await call();
  } catch (err) {
    if (!isUnauthorized(err)) throw err;
  }
  // Someone else refreshed while this request was in flight: the new cookie is already set.
  if (sentAt === generation && !(await refreshSession())) throw expired();
  try {
    return await call();
  } catch (err) {
    if (isUnauthorized(err)) throw expired();
    throw err;
  }
}
