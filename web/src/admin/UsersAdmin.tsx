import { useMemo, useState } from 'react';
import { errorMessage } from '../api/http';
import { useCurrentUser } from '../auth/AuthContext';
import { displayName, type Role, type User } from '../auth/types';
import { ConfirmDialog } from '../ui/ConfirmDialog';
import { ErrorBanner } from '../ui/ErrorBanner';
import { PlusIcon } from '../ui/icons';
import { Loading } from '../ui/Loading';
import { Spinner } from '../ui/Spinner';
import { Table } from '../ui/Table';
import { formatAbsolute, initial } from '../ui/format';
import { usePendingIds } from '../hooks/usePendingIds';
import { deleteUser, deleteUserHome, listUsers, updateUser, type UserPatch } from './adminApi';
import { AdminPage } from './AdminPage';
import { ApprovalsDialog } from './ApprovalsDialog';
import { PasswordDialog } from './PasswordDialog';
import { usePagedLoader } from '../hooks/usePagedLoader';
import { ShowMore } from '../ui/ShowMore';
import { UserForm } from './UserForm';

type Dialog =
  | { kind: 'new' }
  | { kind: 'password'; user: User }
  | { kind: 'approvals'; user: User }
  | { kind: 'delete'; user: User }
  | { kind: 'home'; user: User }
  | null;

export function UsersAdmin() {
  const { user: me } = useCurrentUser();
  const users = usePagedLoader(listUsers);
  const [dialog, setDialog] = useState<Dialog>(null);
  const [pending, whileSaving] = usePendingIds();
  const [actionError, setActionError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const sorted = useMemo(() => [...(users.data ?? [])].sort((a, b) => a.username.localeCompare(b.username)), [users.data]);

  const replace = (updated: User) => users.setData((list) => list?.map((u) => (u.id === updated.id ? updated : u)) ?? list);

  const open = (next: Dialog) => {
    setNotice(null);
    setActionError(null);
    setDialog(next);
  };

  const patch = async (user: User, change: UserPatch, done: string) => {
    setActionError(null);
    setNotice(null);
    await whileSaving(user.id, async () => {
      try {
        const updated = await updateUser(user.id, change);
        replace(updated ?? { ...user, ...change });
        setNotice(done);
      } catch (err) {
        setActionError(`Could not update ${user.username}: ${errorMessage(err)}`);
      }
    });
  };

  const confirmDeleteHome = async (user: User) => {
    await deleteUserHome(user.id);
    setDialog(null);
    setNotice(`Deleted the home of ${user.username}.`);
  };

  const confirmDelete = async (user: User) => {
    await deleteUser(user.id);
    users.setData((list) => list?.filter((u) => u.id !== user.id) ?? list);
    setDialog(null);
    setNotice(`Deleted ${user.username}.`);
  };

  return (
    <AdminPage
      section="users"
      title="Users"
      description="People who can sign in, their role, and which restricted apps they may launch."
      tools={
        <button type="button" className="btn btn--primary" onClick={() => open({ kind: 'new' })} data-testid="admin-user-new">
          <PlusIcon /> New user
        </button>
      }
      notice={notice}
    >
      <ErrorBanner message={actionError} onDismiss={() => setActionError(null)} />
      <ErrorBanner message={users.error && `Could not load the users: ${users.error}`} onDismiss={users.clearError} action={{ label: 'Retry', onClick: users.reload }} />

      {users.data === null && !users.error && <Loading what="users" />}

      {sorted.length > 0 && (
        <Table look="data-table" columns={['User', 'Role', 'Sign-in', 'Status']}>
          {sorted.map((user) => {
            const self = user.id === me.id;
            const busy = pending.has(user.id);
            return (
              <tr key={user.id} data-testid={`admin-user-row-${user.username}`} className={user.disabled ? 'is-disabled' : undefined}>
                <th scope="row" className="data-table__primary">
                  <div className="identity">
                    <span className="avatar avatar--lg" aria-hidden="true">
                      {initial(displayName(user))}
                    </span>
                    <div className="identity__text">
                      <span className="identity__name">
                        {displayName(user)}
                        {self && <span className="tag tag--self">You</span>}
                      </span>
                      <span className="identity__sub" title={`Added ${formatAbsolute(user.created_at)}`}>
                        {user.username}
                      </span>
                    </div>
                  </div>
                </th>
                <td data-label="Role">
                  <select
                    className="input select select--compact"
                    value={user.role}
                    disabled={self || busy}
                    title={self ? 'You cannot change your own role' : undefined}
                    onChange={(e) => {
                      const role = e.target.value as Role;
                      void patch(user, { role }, `${user.username} is now ${role === 'admin' ? 'an administrator' : 'a user'}.`);
                    }}
                    aria-label={`Role of ${user.username}`}
                    data-testid={`user-role-${user.username}`}
                  >
                    <option value="user">User</option>
                    <option value="admin">Administrator</option>
                  </select>
                </td>
                <td data-label="Sign-in">{user.auth_source === 'oidc' ? 'Single sign-on' : 'Password'}</td>
                <td data-label="Status">
                  <span className={`tag ${user.disabled ? 'tag--disabled' : 'tag--active'}`} data-testid={`user-status-${user.username}`}>
                    {user.disabled ? 'Disabled' : 'Active'}
                  </span>
                </td>
                <td className="data-table__actions">
                  {busy && <Spinner size="sm" label={`Saving ${user.username}`} />}
                  <button
                    type="button"
                    className="btn btn--small btn--secondary"
                    onClick={() => open({ kind: 'approvals', user })}
                    data-testid={`user-approvals-${user.username}`}
                    aria-label={`Approvals for ${user.username}`}
                  >
                    Approvals
                  </button>
                  {user.auth_source === 'local' && (
                    <button
                      type="button"
                      className="btn btn--small btn--secondary"
                      onClick={() => open({ kind: 'password', user })}
                      data-testid={`user-password-${user.username}`}
                      aria-label={`Reset the password of ${user.username}`}
                    >
                      Reset password
                    </button>
                  )}
                  <button
                    type="button"
                    className="btn btn--small btn--secondary"
                    onClick={() => open({ kind: 'home', user })}
                    data-testid={`user-home-delete-${user.username}`}
                    aria-label={`Delete the home of ${user.username}`}
                  >
                    Delete home
                  </button>
                  {!self && (
                    <>
                      <button
                        type="button"
                        className="btn btn--small btn--secondary"
                        disabled={busy}
                        onClick={() =>
                          void patch(user, { disabled: !user.disabled }, user.disabled ? `${user.username} can sign in again.` : `${user.username} can no longer sign in.`)
                        }
                        data-testid={`user-toggle-${user.username}`}
                        aria-label={`${user.disabled ? 'Enable' : 'Disable'} ${user.username}`}
                      >
                        {user.disabled ? 'Enable' : 'Disable'}
                      </button>
                      <button
                        type="button"
                        className="btn btn--small btn--danger-outline"
                        onClick={() => open({ kind: 'delete', user })}
                        data-testid={`user-delete-${user.username}`}
                        aria-label={`Delete ${user.username}`}
                      >
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            );
          })}
        </Table>
      )}
      <ShowMore hasMore={users.hasMore} loading={users.loadingMore} onClick={users.loadMore} testId="admin-users-more" />

      {dialog?.kind === 'new' && (
        <UserForm
          onCancel={() => setDialog(null)}
          onSaved={(user) => {
            users.setData((list) => [...(list ?? []), user]);
            setDialog(null);
            setNotice(`Added ${user.username}.`);
          }}
        />
      )}
      {dialog?.kind === 'password' && (
        <PasswordDialog
          user={dialog.user}
          onCancel={() => setDialog(null)}
          onSaved={(user) => {
            if (user) replace(user);
            setDialog(null);
            setNotice(`Set a new password for ${dialog.user.username}.`);
          }}
        />
      )}
      {dialog?.kind === 'approvals' && (
        <ApprovalsDialog
          user={dialog.user}
          onCancel={() => setDialog(null)}
          onSaved={() => {
            setDialog(null);
            setNotice(`Saved the approvals of ${dialog.user.username}.`);
          }}
        />
      )}
      {dialog?.kind === 'home' && (
        <ConfirmDialog
          title={`Delete the home of ${dialog.user.username}?`}
          confirmLabel="Delete home"
          onConfirm={() => confirmDeleteHome(dialog.user)}
          onCancel={() => setDialog(null)}
        >
          <p>
            Every file <strong>{displayName(dialog.user)}</strong> kept in apps with a persistent home is deleted, for good. Their next such session
            starts with an empty home. Sessions still using the home must end first.
          </p>
        </ConfirmDialog>
      )}
      {dialog?.kind === 'delete' && (
        <ConfirmDialog
          title={`Delete ${dialog.user.username}?`}
          confirmLabel="Delete user"
          onConfirm={() => confirmDelete(dialog.user)}
          onCancel={() => setDialog(null)}
        >
          <p>
            <strong>{displayName(dialog.user)}</strong> ({dialog.user.username}) can no longer sign in. This cannot be undone; to keep the account
            for later, disable it instead.
          </p>
        </ConfirmDialog>
      )}
    </AdminPage>
  );
}
