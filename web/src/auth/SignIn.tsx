import { useEffect, useRef, useState, type FormEvent } from 'react';
import { errorMessage } from '../api/http';
import { BrandMark } from '../ui/BrandMark';
import { KeyIcon } from '../ui/icons';
import { Spinner } from '../ui/Spinner';
import { useAuth, type SignedOutReason } from './AuthContext';
import { oidcLoginUrl } from './authApi';
import { peekReturn } from './returnTo';
import type { AuthConfig } from './types';
import './auth.css';

interface Props {
  config: AuthConfig;
  why: SignedOutReason;
  /** Set by the server when a single sign-on attempt failed (`#/signin?error=…`). */
  routeError: string | null;
}

export function SignIn({ config, why, routeError }: Props) {
  const { signIn } = useAuth();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const fromProvider = routeError && `Single sign-on did not work: ${routeError}`;
  const [error, setError] = useState<string | null>(fromProvider);
  const [busy, setBusy] = useState(false);
  const usernameRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);

  useEffect(() => setError(fromProvider), [fromProvider]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    if (!username.trim()) {
      setError('Enter your username.');
      usernameRef.current?.focus();
      return;
    }
    if (!password) {
      setError('Enter your password.');
      passwordRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await signIn(username.trim(), password);
    } catch (err) {
      setError(errorMessage(err));
      setPassword('');
      setBusy(false);
      passwordRef.current?.focus();
    }
  };

  const showForm = config.local;
  const showOidc = config.oidc.enabled;
  const oidcName = config.oidc.name || 'single sign-on';

  return (
    <div className="auth-page">
      <div className="auth-card" data-testid="signin-page">
        <div className="auth-card__brand">
          <BrandMark className="auth-card__mark" />
          <span>Sortie</span>
        </div>
        <h1 className="auth-card__title">Sign in</h1>
        <p className="auth-card__subtitle">Sign in to launch your apps.</p>

        {why === 'expired' && !error && (
          <p className="auth-card__notice" role="status" data-testid="signin-notice">
            Your sign-in expired. Sign in again to pick up where you left off.
          </p>
        )}

        {error && (
          <p className="form-error" role="alert" data-testid="signin-error">
            {error}
          </p>
        )}

        {showForm && (
          <form className="auth-form" onSubmit={submit} noValidate>
            <label className="field">
              <span className="field__label">Username</span>
              <input
                ref={usernameRef}
                className="input"
                name="username"
                autoComplete="username"
                autoCapitalize="none"
                spellCheck={false}
                autoFocus
                value={username}
                onChange={(e) => setUsername(e.target.value)}
                data-testid="signin-username"
              />
            </label>
            <label className="field">
              <span className="field__label">Password</span>
              <input
                ref={passwordRef}
                className="input"
                type="password"
                name="password"
                autoComplete="current-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                data-testid="signin-password"
              />
            </label>
            <button type="submit" className="btn btn--primary btn--block" disabled={busy} data-testid="signin-submit">
              {busy && <Spinner size="sm" />} {busy ? 'Signing in…' : 'Sign in'}
            </button>
          </form>
        )}

        {showForm && showOidc && (
          <div className="auth-divider" aria-hidden="true">
            <span>or</span>
          </div>
        )}

        {showOidc && (
          // A full-page navigation: the provider's pages cannot live inside this app.
          <a className={`btn btn--block ${showForm ? 'btn--secondary' : 'btn--primary'}`} href={oidcLoginUrl(peekReturn() ?? '#/')} data-testid="signin-oidc">
            <KeyIcon /> Sign in with {oidcName}
          </a>
        )}

        {!showForm && !showOidc && (
          <p className="auth-card__notice" data-testid="signin-unavailable">
            No way to sign in is set up on this Sortie server. Ask your administrator.
          </p>
        )}
      </div>
    </div>
  );
}
