import { useEffect } from 'react';
import { paths, useHashRoute, type Route } from './hooks/useHashRoute';
import { Catalog } from './components/Catalog';
import { SessionsList } from './components/SessionsList';
import { Viewer } from './components/Viewer';

const titles: Record<Route['page'], string> = {
  catalog: 'Catalog',
  sessions: 'Sessions',
  viewer: 'Session',
  'not-found': 'Not found',
};

export function App() {
  const route = useHashRoute();

  useEffect(() => {
    document.title = `${titles[route.page]} · Sortie`;
  }, [route.page]);

  const section = route.page === 'viewer' ? 'sessions' : route.page;

  return (
    <div className={`shell shell--${route.page}`}>
      {/* Not an href="#main": with hash routing that would navigate away. */}
      <button type="button" className="skip-link" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header className="topbar">
        <a className="brand" href={paths.catalog} aria-label="Sortie home">
          <svg className="brand__mark" viewBox="0 0 32 32" aria-hidden="true">
            <rect width="32" height="32" rx="8" fill="currentColor" />
            <path d="M10 22l12-6-12-6v4.5l6 1.5-6 1.5z" fill="#fff" />
          </svg>
          <span className="brand__name">Sortie</span>
        </a>
        <nav className="nav" aria-label="Main">
          <a className="nav__link" href={paths.catalog} aria-current={section === 'catalog' ? 'page' : undefined} data-testid="nav-catalog">
            Catalog
          </a>
          <a className="nav__link" href={paths.sessions} aria-current={section === 'sessions' ? 'page' : undefined} data-testid="nav-sessions">
            Sessions
          </a>
        </nav>
      </header>
      <main id="main" className="main" tabIndex={-1}>
        {route.page === 'catalog' && <Catalog />}
        {route.page === 'sessions' && <SessionsList />}
        {/* Keyed so a relaunch (new id) starts the viewer from a clean slate. */}
        {route.page === 'viewer' && <Viewer key={route.sessionId} sessionId={route.sessionId} />}
        {route.page === 'not-found' && (
          <div className="page">
            <div className="empty">
              <h1 className="empty__title">Page not found</h1>
              <p className="empty__text">There is nothing at “{route.path}”.</p>
              <a className="btn btn--primary" href={paths.catalog}>
                Back to catalog
              </a>
            </div>
          </div>
        )}
      </main>
    </div>
  );
}
