import { useMemo, useState } from 'react';
import { endSession, errorMessage, isActive, listSessions, type Session } from '../api';
import { displayName, type User } from '../auth/types';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { ErrorBanner } from '../components/ErrorBanner';
import { Loading } from '../components/Loading';
import { StatusBadge } from '../components/StatusBadge';
import { Switch } from '../components/Switch';
import { Table } from '../components/Table';
import { formatAbsolute, formatRelative } from '../format';
import { paths } from '../hooks/useHashRoute';
import { useNow } from '../hooks/useNow';
import { usePoll } from '../hooks/usePoll';
import { listUsers } from './adminApi';
import { useLoader } from './useLoader';

const REFRESH_MS = 5000;
const EVERYONE = '';

export function SessionsAdmin() {
  const users = useLoader((signal) => listUsers(signal));
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [owner, setOwner] = useState(EVERYONE);
  const [activeOnly, setActiveOnly] = useState(true);
  const [ending, setEnding] = useState<Session | null>(null);
  const [endBusy, setEndBusy] = useState(false);
  const [endError, setEndError] = useState<string | null>(null);
  const now = useNow(15000);

  const refresh = usePoll(async (signal) => {
    try {
      const list = await listSessions({ userId: owner || undefined, signal });
      setSessions(list);
      setLoadError(null);
    } catch (err) {
      if (signal.aborted) return;
      setLoadError(`Could not load the sessions: ${errorMessage(err)}`);
    }
  }, REFRESH_MS);

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
    setSessions(null);
    refresh();
  };

  const confirmEnd = async () => {
    if (!ending) return;
    setEndBusy(true);
    setEndError(null);
    try {
      const ended = await endSession(ending.id);
      setSessions((prev) => prev?.map((s) => (s.id === ended?.id ? ended : s)) ?? prev);
      setEnding(null);
      refresh();
    } catch (err) {
      setEndError(errorMessage(err));
    } finally {
      setEndBusy(false);
    }
  };

  return (
    <section aria-labelledby="admin-sessions-title">
      <div className="admin-toolbar">
        <div>
          <h2 className="admin-toolbar__title" id="admin-sessions-title">
            Sessions
          </h2>
          <p className="admin-toolbar__text">Everyone’s sessions. The list refreshes on its own.</p>
        </div>
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
          <Switch label="Active only" checked={activeOnly} onChange={setActiveOnly} testId="admin-sessions-active-only" />
        </div>
      </div>

      <ErrorBanner message={actionError ?? loadError} onDismiss={() => (actionError ? setActionError(null) : setLoadError(null))} />

      {sessions === null && !loadError && (
        <Loading what="sessions" />
      )}

      {sessions !== null && shown.length === 0 && (
        <div className="empty" data-testid="admin-sessions-empty">
          <h3 className="empty__title">{activeOnly ? 'No active sessions' : 'No sessions'}</h3>
          <p className="empty__text">{owner ? 'This person has nothing here.' : 'Nobody has anything here.'}</p>
          {activeOnly && (
            <button type="button" className="btn btn--secondary" onClick={() => setActiveOnly(false)}>
              Show ended sessions too
            </button>
          )}
        </div>
      )}

      {shown.length > 0 && (
        <Table look="data-table" columns={['App', 'User', 'Status', 'Started', 'Details']}>
          {shown.map((s) => (
            <tr key={s.id} data-testid={`admin-session-row-${s.id}`}>
              <th scope="row" className="data-table__primary">
                {s.app_name || s.app_id}
              </th>
              <td data-label="User">
                <UserCell user={usersById.get(s.user_id)} id={s.user_id} />
              </td>
              <td data-label="Status">
                <StatusBadge status={s.status} />
              </td>
              <td data-label="Started" className="data-table__time">
                <time dateTime={s.created_at} title={formatAbsolute(s.created_at)}>
                  {formatRelative(s.created_at, now)}
                </time>
              </td>
              <td data-label="Details" className={`data-table__reason${s.reason ? '' : ' data-table__reason--none'}`}>
                {s.reason ?? <span className="muted">—</span>}
              </td>
              <td className="data-table__actions">
                {isActive(s.status) && (
                  <>
                    <a className="btn btn--small btn--secondary" href={paths.viewer(s.id)} data-testid={`admin-session-open-${s.id}`} aria-label={`Open ${s.app_name}`}>
                      Open
                    </a>
                    <button
                      type="button"
                      className="btn btn--small btn--danger-outline"
                      onClick={() => {
                        setEndError(null);
                        setActionError(null);
                        setEnding(s);
                      }}
                      data-testid={`admin-session-end-${s.id}`}
                      aria-label={`End ${s.app_name}`}
                    >
                      End
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}

      {ending && (
        <ConfirmDialog
          title={`End ${ending.app_name || ending.app_id}?`}
          confirmLabel="End session"
          busy={endBusy}
          error={endError}
          onConfirm={() => void confirmEnd()}
          onCancel={() => setEnding(null)}
        >
          <p>
            The desktop closes for <strong>{nameOf(usersById.get(ending.user_id), ending.user_id)}</strong> right away, and anything unsaved in it is
            lost.
          </p>
        </ConfirmDialog>
      )}
    </section>
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
