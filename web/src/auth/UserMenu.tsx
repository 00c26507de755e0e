import { useState } from 'react';
import { Spinner } from '../components/Spinner';
import { useAuth, useCurrentUser } from './AuthContext';
import { displayName } from './types';
import './auth.css';

export function UserMenu() {
  const { user, isAdmin, authEnabled } = useCurrentUser();
  const { signOut } = useAuth();
  const [busy, setBusy] = useState(false);
  const name = displayName(user);

  const onSignOut = async () => {
    setBusy(true);
    await signOut();
  };

  return (
    <div className="user-menu">
      <span className="avatar" aria-hidden="true">
        {(name.trim()[0] ?? '?').toUpperCase()}
      </span>
      <span className="user-menu__who">
        <span className="user-menu__name" data-testid="user-name" title={name === user.username ? name : `${name} (${user.username})`}>
          {name}
        </span>
        {isAdmin && (
          <span className="role-badge" data-testid="user-role">
            Admin
          </span>
        )}
      </span>
      {authEnabled && (
        <button type="button" className="btn btn--small btn--secondary user-menu__signout" onClick={onSignOut} disabled={busy} data-testid="signout" title="Sign out">
          {busy ? <Spinner size="sm" /> : <SignOutIcon />}
          <span className="user-menu__signout-label">Sign out</span>
        </button>
      )}
    </div>
  );
}

function SignOutIcon() {
  return (
    <svg className="btn__icon" viewBox="0 0 20 20" aria-hidden="true">
      <path
        d="M8 4H5a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h3M12 6.5 15.5 10 12 13.5M15.5 10H8"
        fill="none"
        stroke="currentColor"
        strokeWidth="1.8"
        strokeLinecap="round"
        strokeLinejoin="round"
      />
    </svg>
  );
}
