import { useCallback, useEffect, useMemo, useState } from 'react';
import { errorMessage } from '../api/http';
import { listApps } from './catalogApi';
import type { App } from '../contract';
import { createSession } from '../sessions/sessionsApi';
import { navigate, paths } from '../hooks/useHashRoute';
import { usePendingIds } from '../hooks/usePendingIds';
import { useCurrentUser } from '../auth/AuthContext';
import { AppCard } from './AppCard';
import { ErrorBanner } from '../ui/ErrorBanner';
import { Loading } from '../ui/Loading';

const ALL = 'All';

export function Catalog() {
  const { isAdmin } = useCurrentUser();
  const [apps, setApps] = useState<App[] | null>(null);
  const [loadFailed, setLoadFailed] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [query, setQuery] = useState('');
  const [category, setCategory] = useState(ALL);
  const [launching, whileLaunching] = usePendingIds();
  const [reloadKey, setReloadKey] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    setLoadFailed(false);
    listApps(controller.signal)
      .then((list) => {
        setApps(list);
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        setLoadFailed(true);
        setError(`Could not load the catalog: ${errorMessage(err)}`);
      });
    return () => controller.abort();
  }, [reloadKey]);

  const categories = useMemo(() => {
    const names = new Set((apps ?? []).map((a) => a.category).filter(Boolean));
    return [ALL, ...[...names].sort((a, b) => a.localeCompare(b))];
  }, [apps]);

  const visible = useMemo(() => {
    const needle = query.trim().toLowerCase();
    return (apps ?? []).filter((app) => {
      if (category !== ALL && app.category !== category) return false;
      if (!needle) return true;
      return [app.name, app.description, app.category].some((field) => field?.toLowerCase().includes(needle));
    });
  }, [apps, query, category]);

  const launch = useCallback(
    async (app: App) => {
      setError(null);
      await whileLaunching(app.id, async () => {
        try {
          // "optional" recording is the person's choice at launch.
          const record = app.recording === 'optional' ? window.confirm(`Record this session of ${app.name}? Administrators can play recordings back.`) : undefined;
          const session = await createSession(app.id, record);
          navigate(paths.viewer(session.id));
        } catch (err) {
          setError(`Could not launch ${app.name}: ${errorMessage(err)}`);
        }
      });
    },
    [whileLaunching],
  );

  const clearFilters = () => {
    setQuery('');
    setCategory(ALL);
  };

  return (
    <div className="page">
      <div className="page__head">
        <div>
          <h1 className="page__title">Catalog</h1>
          <p className="page__subtitle">Pick an app to run it in this browser tab.</p>
        </div>
        <label className="search">
          <span className="visually-hidden">Search apps by name, description or category</span>
          <svg className="search__icon" viewBox="0 0 20 20" aria-hidden="true">
            <circle cx="9" cy="9" r="5.5" fill="none" stroke="currentColor" strokeWidth="1.8" />
            <path d="m13.5 13.5 3.5 3.5" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" />
          </svg>
          <input
            type="search"
            className="search__input"
            placeholder="Search apps"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            data-testid="search-input"
            autoComplete="off"
            spellCheck={false}
          />
        </label>
      </div>

      <ErrorBanner
        message={error}
        onDismiss={() => setError(null)}
        action={loadFailed ? { label: 'Retry', onClick: () => { setError(null); setReloadKey((k) => k + 1); } } : undefined}
      />

      {apps && categories.length > 1 && (
        <div className="chips" role="group" aria-label="Filter by category">
          {categories.map((name) => (
            <button
              key={name}
              type="button"
              className="chip"
              aria-pressed={category === name}
              onClick={() => setCategory(name)}
              data-testid={`category-${name}`}
            >
              {name}
            </button>
          ))}
        </div>
      )}

      {!apps && !loadFailed && <Loading what="catalog" />}

      {apps && apps.length === 0 && (
        <div className="empty">
          <h2 className="empty__title">No apps yet</h2>
          {isAdmin ? (
            <>
              <p className="empty__text">The catalog is empty. Add the first application in the admin area.</p>
              <a className="btn btn--primary" href={paths.admin('apps')}>
                Manage apps
              </a>
            </>
          ) : (
            <p className="empty__text">There are no apps you can launch yet. Ask an administrator for access.</p>
          )}
        </div>
      )}

      {apps && apps.length > 0 && visible.length === 0 && (
        <div className="empty" data-testid="catalog-empty">
          <h2 className="empty__title">No apps match</h2>
          <p className="empty__text">
            Nothing matches {query.trim() ? <>“{query.trim()}”</> : 'this filter'}
            {category !== ALL && <> in {category}</>}.
          </p>
          <button type="button" className="btn btn--secondary" onClick={clearFilters}>
            Clear filters
          </button>
        </div>
      )}

      {visible.length > 0 && (
        <>
          <p className="visually-hidden" aria-live="polite">
            {visible.length} {visible.length === 1 ? 'app' : 'apps'} shown
          </p>
          <div className="app-grid">
            {visible.map((app) => (
              <AppCard key={app.id} app={app} launching={launching.has(app.id)} onLaunch={launch} showVisibility={isAdmin} />
            ))}
          </div>
        </>
      )}
    </div>
  );
}
