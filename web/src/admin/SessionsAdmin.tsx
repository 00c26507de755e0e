import { useMemo, useState } from 'react';
import { ACTIVE_STATUSES, isActive, type Session } from '../contract';
import { endSession } from '../sessions/sessionsApi';
import { displayName, type User } from '../auth/types';
import { ConfirmDialog } from '../ui/ConfirmDialog';
import { ErrorBanner } from '../ui/ErrorBanner';
import { Loading } from '../ui/Loading';
import { SessionTable } from '../sessions/SessionTable';
import { Switch } from '../ui/Switch';
import { ShowMore } from '../ui/ShowMore';
import { useSessionList } from '../sessions/useSessionList';
import { listAllUsers } from './adminApi';
import { AdminPage } from './AdminPage';
import { useLoader } from '../hooks/useLoader';

const REFRESH_MS = 5000;
const EVERYONE = '';

export function SessionsAdmin() {
  // Every user, for the filter and the names: far fewer than sessions.
  const users = useLoader((signal) => listAllUsers(signal));
  const [owner, setOwner] = useState(EVERYONE);
  const [activeOnly, setActiveOnly] = useState(true);
  // Filtered by the server: pages then hold only what is shown.
  const list = useSessionList({
    userId: owner || undefined,
    statuses: activeOnly ? ACTIVE_STATUSES : undefined,
    intervalMs: REFRESH_MS,
    liveScope: 'all',
    loadFailure: 'Could not load the sessions',
  });
  const { sessions, loadError } = list;
  const [ending, setEnding] = useState<Session | null>(null);

  const usersById = useMemo(() => new Map((users.data ?? []).map((u) => [u.id, u])), [users.data]);
  const shown = useMemo(
    () =>
      (sessions ?? [])
        .filter((s) => (!activeOnly || isActive(s.status)) && (!owner || s.user_id === owner))
        .sort((a, b) => b.created_at.localeCompare(a.created_at)),
    [sessions, activeOnly, owner],
  );

  const changeOwner = (id: string) => {
    setOwner(id);
    list.clear();
    list.refresh();
  };

  const changeActiveOnly = (value: boolean) => {
    setActiveOnly(value);
    list.clear();
    list.refresh();
  };

  const confirmEnd = async (session: Session) => {
    list.replace(await endSession(session.id));
    setEnding(null);
    list.refresh();
  };

  return (
    <AdminPage
      section="sessions"
      title="Sessions"
      description="Everyone’s sessions. The list refreshes on its own."
      tools={
        <div className="admin-toolbar__filters">
          <label className="inline-field">
            <span>User</span>
            <select className="input select select--compact" value={owner} onChange={(e) => changeOwner(e.target.value)} data-testid="admin-sessions-user">
              <option value={EVERYONE}>Everyone</option>
              {(users.data ?? [])
                .slice()
                .sort((a, b) => a.username.localeCompare(b.username))
                .map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.username}
                  </option>
                ))}
            </select>
          </label>
          <Switch label="Active only" checked={activeOnly} onChange={changeActiveOnly} testId="admin-sessions-active-only" />
        </div>
      }
    >
      <ErrorBanner message={loadError} onDismiss={list.dismissLoadError} />

      {sessions === null && !loadError && <Loading what="sessions" />}

      {sessions !== null && shown.length === 0 && (
        <div className="empty" data-testid="admin-sessions-empty">
          <h3 className="empty__title">{activeOnly ? 'No active sessions' : 'No sessions'}</h3>
          <p className="empty__text">{owner ? 'This person has nothing here.' : 'Nobody has anything here.'}</p>
          {activeOnly && (
            <button type="button" className="btn btn--secondary" onClick={() => changeActiveOnly(false)}>
              Show ended sessions too
            </button>
          )}
        </div>
      )}

      {shown.length > 0 && (
        <SessionTable
          sessions={shown}
          look="data-table"
          owner={(s) =>
            s.pooled ? (
              <span className="muted" data-testid={`pooled-${s.id}`} title="Started ahead for the next launch of this app; nobody owns it yet">
                Warm pool
              </span>
            ) : (
              <UserCell user={usersById.get(s.user_id)} id={s.user_id} />
            )
          }
          onEnd={setEnding}
          testIds={{ row: 'admin-session-row-', open: 'admin-session-open-', end: 'admin-session-end-' }}
        />
      )}
      <ShowMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="admin-sessions-more" />

      {ending && (
        <ConfirmDialog
          title={`End ${ending.app_name || ending.app_id}?`}
          confirmLabel="End session"
          onConfirm={() => confirmEnd(ending)}
          onCancel={() => setEnding(null)}
        >
          <p>
            {ending.pooled ? (
              <>This session waits in the app&apos;s warm pool, unclaimed; another is started in its place.</>
            ) : (
              <>
                The desktop closes for <strong>{nameOf(usersById.get(ending.user_id), ending.user_id)}</strong> right away, and anything unsaved in it
                is lost.
              </>
            )}
          </p>
        </ConfirmDialog>
      )}
    </AdminPage>
  );
}

function nameOf(user: User | undefined, id: string): string {
  return user ? displayName(user) : id;
}

function UserCell({ user, id }: { user: User | undefined; id: string }) {
  if (!user) return <code className="data-table__mono">{id || '—'}</code>;
  return (
    <span className="user-cell" title={user.username}>
      {displayName(user)}
      {displayName(user) !== user.username && <span className="user-cell__sub">{user.username}</span>}
    </span>
  );
}
