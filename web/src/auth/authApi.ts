import { ApiError, send } from '../api/http';
import { withAuth } from './refresh';
import type { AuthConfig, SignInResult, User } from './types';

export async function getAuthConfig(signal?: AbortSignal): Promise<AuthConfig> {
  try {
    const config = await send<Partial<AuthConfig>>('GET', '/api/auth/config', undefined, signal);
    return {
      enabled: config?.enabled !== false,
      local: config?.local ?? true,
      oidc: { enabled: Boolean(config?.oidc?.enabled), name: config?.oidc?.name || 'single sign-on' },
    };
  } catch (err) {
    // A Sortie server from before sign-in existed has no such route: nobody signs in there.
    if (err instanceof ApiError && err.status === 404) {
      return { enabled: false, local: false, oidc: { enabled: false, name: '' } };
    }
    throw err;
  }
}

export interface Me {
  user: User;
  auth_enabled: boolean;
}

/** Who is signed in; refreshes an expired access token first. Throws a 401 ApiError when nobody is. */
export function getMe(signal?: AbortSignal): Promise<Me> {
  return withAuth(() => send<Me>('GET', '/api/auth/me', undefined, signal));
}

/** Same, but never tries to refresh: for when sign-in is switched off. */
export function getMeOnce(signal?: AbortSignal): Promise<Me> {
  return send<Me>('GET', '/api/auth/me', undefined, signal);
}

export function login(username: string, password: string): Promise<SignInResult> {
  return send<SignInResult>('POST', '/api/auth/login', { username, password });
}

/** Signing out needs a valid access token, so an expired one is refreshed first. */
export async function logout(): Promise<void> {
  await withAuth(() => send<null>('POST', '/api/auth/logout'));
}

/** Where the browser goes for single sign-on; the server brings it back to `returnTo`. */
export function oidcLoginUrl(returnToHash: string): string {
  const returnTo = `/${returnToHash.startsWith('#') ? returnToHash : `#${returnToHash}`}`;
  return `/api/auth/oidc/login?return_to=${encodeURIComponent(returnTo)}`;
}
