import { useState } from 'react';
import { SignOutIcon } from '../ui/icons';
import { initial } from '../ui/format';
import { Spinner } from '../ui/Spinner';
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
        {initial(name)}
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
          <span className="btn__label">Sign out</span>
        </button>
      )}
    </div>
  );
}
