import './auth.css';

export function AuthDisabledBanner() {
  return (
    <div className="auth-off" role="note" data-testid="auth-disabled-banner">
      <svg className="auth-off__icon" viewBox="0 0 20 20" aria-hidden="true">
        <path
          fill="currentColor"
          d="M8.6 2.8a1.6 1.6 0 0 1 2.8 0l6.9 12.1A1.6 1.6 0 0 1 16.9 17H3.1a1.6 1.6 0 0 1-1.4-2.1zM10 7a1 1 0 0 0-1 1v3.5a1 1 0 1 0 2 0V8a1 1 0 0 0-1-1Zm0 6.5a1.1 1.1 0 1 0 0 2.2 1.1 1.1 0 0 0 0-2.2Z"
        />
      </svg>
      <p>Sign-in is switched off: anyone who can reach Sortie can use every app and every session.</p>
    </div>
  );
}
