import { useEffect } from 'react';
import { AdminArea } from './admin/AdminArea';
import { useAuth } from './auth/AuthContext';
import { AuthDisabledBanner } from './auth/AuthDisabledBanner';
import { rememberReturn, takeReturn } from './auth/returnTo';
import { SignIn } from './auth/SignIn';
import { UserMenu } from './auth/UserMenu';
import { BrandMark } from './ui/BrandMark';
import { Catalog } from './catalog/Catalog';
import { SessionsList } from './sessions/SessionsList';
import { Spinner } from './ui/Spinner';
import { Viewer } from './sessions/Viewer';
import { ShareRedeem } from './sessions/ShareRedeem';
import { navigate, paths, useHashRoute, type Route } from './hooks/useHashRoute';

const titles: Record<Route['page'], string> = {
  catalog: 'Catalog',
  sessions: 'Sessions',
  viewer: 'Session',
  share: 'Shared session',
  signin: 'Sign in',
  admin: 'Admin',
  'not-found': 'Not found',
};

export function App() {
  const { state, retry } = useAuth();
  const route = useHashRoute();

  // Signed out: every page becomes the sign-in page, which remembers where the person was.
  // Signed in: the sign-in page forwards to that place (or the catalog).
  useEffect(() => {
    if (state.status === 'signed-out' && route.page !== 'signin') {
      // The live hash, not `route`: after "Sign out" it already reads #/signin, so nothing is kept.
      rememberReturn(window.location.hash || paths.catalog);
      navigate(paths.signin, { replace: true });
    } else if (state.status === 'signed-in' && route.page === 'signin') {
      navigate(takeReturn() ?? paths.catalog, { replace: true });
    }
  }, [state.status, route.page]);

  const title = state.status === 'signed-out' ? titles.signin : titles[route.page];
  useEffect(() => {
    document.title = `${title} · Sortie`;
  }, [title]);

  if (state.status === 'loading') {
    return (
      <div className="boot">
        <Spinner size="lg" label="Loading Sortie" />
      </div>
    );
  }

  if (state.status === 'error') {
    return (
      <div className="boot">
        <div className="empty boot__panel" role="alert" data-testid="boot-error">
          <h1 className="empty__title">Sortie is not answering</h1>
          <p className="empty__text">{state.message}</p>
          <button type="button" className="btn btn--primary" onClick={retry} data-testid="boot-retry">
            Try again
          </button>
        </div>
      </div>
    );
  }

  if (state.status === 'signed-out') {
    return <SignIn config={state.config} why={state.why} routeError={route.page === 'signin' ? route.error : null} />;
  }

  const isAdmin = state.user.role === 'admin';
  const section = route.page === 'viewer' || route.page === 'share' ? 'sessions' : route.page;

  return (
    <div className={`shell shell--${route.page}`}>
      {/* Not an href="#main": with hash routing that would navigate away. */}
      <button type="button" className="skip-link" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header className="topbar">
        <a className="brand" href={paths.catalog} aria-label="Sortie home">
          <BrandMark />
          <span className="brand__name">Sortie</span>
        </a>
        <nav className="nav" aria-label="Main">
          <a className="nav__link" href={paths.catalog} aria-current={section === 'catalog' ? 'page' : undefined} data-testid="nav-catalog">
            Catalog
          </a>
          <a className="nav__link" href={paths.sessions} aria-current={section === 'sessions' ? 'page' : undefined} data-testid="nav-sessions">
            Sessions
          </a>
          {isAdmin && (
            <a className="nav__link" href={paths.admin()} aria-current={section === 'admin' ? 'page' : undefined} data-testid="nav-admin">
              Admin
            </a>
          )}
        </nav>
        <UserMenu />
      </header>
      {!state.authEnabled && <AuthDisabledBanner />}
      <main id="main" className="main" tabIndex={-1}>
        {route.page === 'catalog' && <Catalog />}
        {route.page === 'sessions' && <SessionsList />}
        {/* Keyed so a relaunch (new id) starts the viewer from a clean slate. */}
        {route.page === 'viewer' && <Viewer key={route.sessionId} sessionId={route.sessionId} />}
        {route.page === 'admin' && <AdminArea section={route.section} />}
        {route.page === 'share' && <ShareRedeem key={route.token} token={route.token} />}
        {route.page === 'signin' && (
          <div className="placeholder">
            <Spinner label="Signing in" />
          </div>
        )}
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
