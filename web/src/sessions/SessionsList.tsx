import { useState } from 'react';
import { errorMessage } from '../api/http';
import { ACTIVE_STATUSES, isActive, type Session } from '../contract';
import { endSession } from './sessionsApi';
import { paths } from '../hooks/useHashRoute';
import { usePendingIds } from '../hooks/usePendingIds';
import { useSessionList } from './useSessionList';
import { useCurrentUser } from '../auth/AuthContext';
import { ErrorBanner } from '../ui/ErrorBanner';
import { Loading } from '../ui/Loading';
import { SessionTable } from './SessionTable';
import { Switch } from '../ui/Switch';
import { ShowMore } from '../ui/ShowMore';

const REFRESH_MS = 4000;

export function SessionsList() {
  const { user, isAdmin, authEnabled } = useCurrentUser();
  // An admin's list holds everyone's sessions unless narrowed to their own; those live under Admin.
  const ownerFilter = isAdmin && authEnabled ? user.id : undefined;
  const [activeOnly, setActiveOnly] = useState(true);
  // Filtered by the server: pages then hold only what is shown.
  const list = useSessionList({
    userId: ownerFilter,
    statuses: activeOnly ? ACTIVE_STATUSES : undefined,
    intervalMs: REFRESH_MS,
    // With sign-in off the list holds everyone's sessions.
    liveScope: isAdmin && ownerFilter === undefined ? 'all' : 'mine',
    loadFailure: 'Could not load your sessions',
  });
  const { sessions, loadError } = list;
  // Kept apart from the load error so a later successful refresh clears that but not an End failure.
  const [actionError, setActionError] = useState<string | null>(null);
  const [ending, whileEnding] = usePendingIds();

  const end = async (session: Session) => {
    setActionError(null);
    await whileEnding(session.id, async () => {
      try {
        list.replace(await endSession(session.id));
      } catch (err) {
        setActionError(`Could not end ${session.app_name}: ${errorMessage(err)}`);
        list.refresh();
      }
    });
  };

  // The server filters the pages; this hides a session ended here before the next refresh.
  const shown = (sessions ?? []).filter((s) => !activeOnly || isActive(s.status));
  const changeActiveOnly = (value: boolean) => {
    setActiveOnly(value);
    list.clear();
    list.refresh();
  };

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
        <Switch label="Active only" checked={activeOnly} onChange={changeActiveOnly} testId="active-only" />
      </div>

      <ErrorBanner
        message={actionError ?? loadError}
        onDismiss={() => (actionError ? setActionError(null) : list.dismissLoadError())}
      />

      {sessions === null && !loadError && <Loading what="sessions" />}

      {sessions !== null && shown.length === 0 && (
        <div className="empty" data-testid="sessions-empty">
          <h2 className="empty__title">{activeOnly ? 'No active sessions' : 'No sessions yet'}</h2>
          <p className="empty__text">
            {activeOnly ? 'Ended sessions are hidden. ' : ''}Launch an app from the catalog and it will show up here.
          </p>
          <div className="empty__actions">
            <a className="btn btn--primary" href={paths.catalog}>
              Browse the catalog
            </a>
            {activeOnly && (
              <button type="button" className="btn btn--secondary" onClick={() => changeActiveOnly(false)}>
                Show all
              </button>
            )}
          </div>
        </div>
      )}

      {shown.length > 0 && (
        <SessionTable
          sessions={shown}
          look="sessions"
          onEnd={(s) => void end(s)}
          ending={ending}
          testIds={{ row: 'sessions-row-', open: 'open-', end: 'end-' }}
        />
      )}
      <ShowMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="sessions-more" />
    </div>
  );
}
