import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { ApiError, errorMessage } from '../api/http';
import { navigate, paths } from '../hooks/useHashRoute';
import { getAuthConfig, getMe, getMeOnce, login, logout } from './authApi';
import { setAuthListeners } from './refresh';
import { forgetReturn } from './returnTo';
import type { AuthConfig, User } from './types';

export type SignedOutReason = 'boot' | 'expired' | 'signed-out';

export type AuthState =
  | { status: 'loading' }
  | { status: 'error'; message: string }
  | { status: 'signed-out'; config: AuthConfig; why: SignedOutReason }
  | { status: 'signed-in'; config: AuthConfig; user: User; authEnabled: boolean };

interface AuthContextValue {
  state: AuthState;
  /** Rejects with the server's ApiError (wrong password, disabled account…). */
  signIn: (username: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
  /** Starts over after the boot requests failed. */
  retry: () => void;
}

const AuthContext = createContext<AuthContextValue | null>(null);

/** Stands in when sign-in is switched off and the server names nobody. */
const ANONYMOUS_ADMIN: User = {
  id: 'anonymous',
  username: 'anonymous',
  display_name: 'Anonymous',
  role: 'admin',
  auth_source: 'local',
  disabled: false,
  created_at: new Date(0).toISOString(),
};

export function AuthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<AuthState>({ status: 'loading' });
  const [bootKey, setBootKey] = useState(0);
  const configRef = useRef<AuthConfig | null>(null);

  useEffect(
    () =>
      setAuthListeners({
        onRefreshed: (user) => setState((prev) => (prev.status === 'signed-in' ? { ...prev, user } : prev)),
        onExpired: () =>
          setState((prev) => (prev.status === 'signed-in' && prev.authEnabled ? { status: 'signed-out', config: prev.config, why: 'expired' } : prev)),
      }),
    [],
  );

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    setState({ status: 'loading' });
    (async () => {
      try {
        const config = await getAuthConfig(signal);
        configRef.current = config;
        if (!config.enabled) {
          let user = ANONYMOUS_ADMIN;
          try {
            user = (await getMeOnce(signal)).user ?? ANONYMOUS_ADMIN;
          } catch {
            if (signal.aborted) return;
          }
          setState({ status: 'signed-in', config, user, authEnabled: false });
          return;
        }
        try {
          const me = await getMe(signal);
          setState({ status: 'signed-in', config, user: me.user, authEnabled: me.auth_enabled !== false });
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof ApiError && err.status === 401) setState({ status: 'signed-out', config, why: 'boot' });
          else throw err;
        }
      } catch (err) {
        if (signal.aborted) return;
        setState({ status: 'error', message: errorMessage(err) });
      }
    })();
    return () => controller.abort();
  }, [bootKey]);

  const signIn = useCallback(async (username: string, password: string) => {
    const result = await login(username, password);
    const config = configRef.current ?? { enabled: true, local: true, oidc: { enabled: false, name: '' } };
    setState({ status: 'signed-in', config, user: result.user, authEnabled: true });
  }, []);

  const signOut = useCallback(async () => {
    try {
      await logout();
    } catch {
      // Already signed out (401) or the server is unreachable: either way this tab signs out.
    }
    forgetReturn();
    // Leave first: the sign-in page then has nothing to remember (see App).
    navigate(paths.signin);
    const config = configRef.current;
    if (config) setState({ status: 'signed-out', config, why: 'signed-out' });
  }, []);

  const retry = useCallback(() => setBootKey((k) => k + 1), []);

  const value = useMemo(() => ({ state, signIn, signOut, retry }), [state, signIn, signOut, retry]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error('useAuth needs an <AuthProvider> above it');
  return value;
}

export interface CurrentUser {
  user: User;
  isAdmin: boolean;
  /** False when the operator switched sign-in off (everyone acts as an admin). */
  authEnabled: boolean;
}

/** The signed-in person; only for components rendered while someone is signed in. */
export function useCurrentUser(): CurrentUser {
  const { state } = useAuth();
  if (state.status !== 'signed-in') throw new Error('useCurrentUser needs a signed-in user');
  return { user: state.user, isAdmin: state.user.role === 'admin', authEnabled: state.authEnabled };
}
