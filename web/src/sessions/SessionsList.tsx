import { useState } from 'react';
import { errorMessage } from '../api/http';
import { isActive, type Session } from '../contract';
import { endSession } from './sessionsApi';
import { paths } from '../hooks/useHashRoute';
import { usePendingIds } from '../hooks/usePendingIds';
import { useSessionList } from './useSessionList';
import { useCurrentUser } from '../auth/AuthContext';
import { ErrorBanner } from '../ui/ErrorBanner';
import { Loading } from '../ui/Loading';
import { SessionTable } from './SessionTable';
import { Switch } from '../ui/Switch';

const REFRESH_MS = 4000;

export function SessionsList() {
  const { user, isAdmin, authEnabled } = useCurrentUser();
  // An admin's list holds everyone's sessions unless narrowed to their own; those live under Admin.
  const ownerFilter = isAdmin && authEnabled ? user.id : undefined;
  const list = useSessionList({ userId: ownerFilter, intervalMs: REFRESH_MS, loadFailure: 'Could not load your sessions' });
  const { sessions, loadError } = list;
  // Kept apart from the load error so a later successful refresh clears that but not an End failure.
  const [actionError, setActionError] = useState<string | null>(null);
  const [activeOnly, setActiveOnly] = useState(true);
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
        onDismiss={() => (actionError ? setActionError(null) : list.dismissLoadError())}
      />

      {sessions === null && !loadError && <Loading what="sessions" />}

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
        <SessionTable
          sessions={shown}
          look="sessions"
          onEnd={(s) => void end(s)}
          ending={ending}
          testIds={{ row: 'sessions-row-', open: 'open-', end: 'end-' }}
        />
      )}
    </div>
  );
}
