import { useState } from 'react';
import { endSession, errorMessage, isActive, listSessions, type Session } from '../api';
import { formatAbsolute, formatRelative } from '../format';
import { paths } from '../hooks/useHashRoute';
import { useNow } from '../hooks/useNow';
import { usePoll } from '../hooks/usePoll';
import { useCurrentUser } from '../auth/AuthContext';
import { ErrorBanner } from './ErrorBanner';
import { Loading } from './Loading';
import { StatusBadge } from './StatusBadge';
import { Switch } from './Switch';
import { Table } from './Table';

const REFRESH_MS = 4000;

export function SessionsList() {
  const { user, isAdmin, authEnabled } = useCurrentUser();
  // An admin's list holds everyone's sessions unless narrowed to their own; those live under Admin.
  const ownerFilter = isAdmin && authEnabled ? user.id : undefined;
  const [sessions, setSessions] = useState<Session[] | null>(null);
  // Kept apart so a later successful refresh clears a load failure but not an End failure.
  const [loadError, setLoadError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [activeOnly, setActiveOnly] = useState(true);
  const [ending, setEnding] = useState<ReadonlySet<string>>(new Set());
  const now = useNow(15000);

  const refresh = usePoll(async (signal) => {
    try {
      const list = await listSessions({ userId: ownerFilter, signal });
      setSessions(list);
      setLoadError(null);
    } catch (err) {
      if (signal.aborted) return;
      setLoadError(`Could not load your sessions: ${errorMessage(err)}`);
    }
  }, REFRESH_MS);

  const end = async (session: Session) => {
    setActionError(null);
    setEnding((prev) => new Set(prev).add(session.id));
    try {
      const ended = await endSession(session.id);
      setSessions((prev) => prev?.map((s) => (s.id === ended.id ? ended : s)) ?? prev);
    } catch (err) {
      setActionError(`Could not end ${session.app_name}: ${errorMessage(err)}`);
      refresh();
    } finally {
      setEnding((prev) => {
        const next = new Set(prev);
        next.delete(session.id);
        return next;
      });
    }
  };

  const shown = (sessions ?? []).filter((s) => !activeOnly || isActive(s.status));
  const hiddenCount = (sessions?.length ?? 0) - shown.length;

  return (
    <div className="page">
      <div className="page__head">
        <div>
          <h1 className="page__title">Sessions</h1>
          <p className="page__subtitle">
            Apps you started. The list refreshes on its own.
            {ownerFilter && (
              <>
                {' '}
                Everyone’s sessions are under <a href={paths.admin('sessions')}>Admin</a>.
              </>
            )}
          </p>
        </div>
        <Switch label="Active only" checked={activeOnly} onChange={setActiveOnly} testId="active-only" />
      </div>

      <ErrorBanner
        message={actionError ?? loadError}
        onDismiss={() => (actionError ? setActionError(null) : setLoadError(null))}
      />

      {sessions === null && !loadError && (
        <Loading what="sessions" />
      )}

      {sessions !== null && shown.length === 0 && (
        <div className="empty" data-testid="sessions-empty">
          <h2 className="empty__title">{activeOnly ? 'No active sessions' : 'No sessions yet'}</h2>
          <p className="empty__text">
            {activeOnly && hiddenCount > 0
              ? `${hiddenCount} ended ${hiddenCount === 1 ? 'session is' : 'sessions are'} hidden.`
              : 'Launch an app from the catalog and it will show up here.'}
          </p>
          <div className="empty__actions">
            <a className="btn btn--primary" href={paths.catalog}>
              Browse the catalog
            </a>
            {activeOnly && hiddenCount > 0 && (
              <button type="button" className="btn btn--secondary" onClick={() => setActiveOnly(false)}>
                Show all
              </button>
            )}
          </div>
        </div>
      )}

      {shown.length > 0 && (
        <Table look="sessions" columns={['App', 'Status', 'Started', 'Details']}>
          {shown.map((s) => (
            <tr key={s.id} data-testid={`sessions-row-${s.id}`}>
              <th scope="row" className="sessions__app">
                {s.app_name || s.app_id}
              </th>
              <td className="sessions__status">
                <StatusBadge status={s.status} />
              </td>
              <td className="sessions__time">
                <time dateTime={s.created_at} title={formatAbsolute(s.created_at)}>
                  {formatRelative(s.created_at, now)}
                </time>
              </td>
              <td className={`sessions__reason${s.reason ? '' : ' sessions__reason--none'}`}>
                {s.reason ?? <span className="muted">—</span>}
              </td>
              <td className="sessions__actions">
                {isActive(s.status) && (
                  <>
                    <a
                      className="btn btn--small btn--secondary"
                      href={paths.viewer(s.id)}
                      data-testid={`open-${s.id}`}
                      aria-label={`Open ${s.app_name}`}
                    >
                      Open
                    </a>
                    <button
                      type="button"
                      className="btn btn--small btn--danger-outline"
                      onClick={() => end(s)}
                      disabled={ending.has(s.id)}
                      data-testid={`end-${s.id}`}
                      aria-label={`End ${s.app_name}`}
                    >
                      {ending.has(s.id) ? 'Ending…' : 'End'}
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}
