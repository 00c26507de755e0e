import { useEffect, useState } from 'react';

export type AdminSection = 'apps' | 'users' | 'sessions' | 'audit' | 'recordings';

export type Route =
  | { page: 'catalog' }
  | { page: 'sessions' }
  | { page: 'viewer'; sessionId: string }
  | { page: 'share'; token: string }
  | { page: 'signin'; error: string | null }
  | { page: 'admin'; section: AdminSection }
  | { page: 'not-found'; path: string };

const adminSections: readonly AdminSection[] = ['apps', 'users', 'sessions', 'audit', 'recordings'];

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const queryAt = raw.indexOf('?');
  const query = new URLSearchParams(queryAt >= 0 ? raw.slice(queryAt + 1) : '');
  const path = (queryAt >= 0 ? raw.slice(0, queryAt) : raw).replace(/\/+$/, '') || '/';
  if (path === '/' || path === '/catalog') return { page: 'catalog' };
  if (path === '/sessions') return { page: 'sessions' };
  if (path === '/signin') return { page: 'signin', error: query.get('error') || null };
  if (path === '/admin') return { page: 'admin', section: 'apps' };
  const admin = /^\/admin\/([^/]+)$/.exec(path);
  const section = adminSections.find((s) => s === admin?.[1]);
  if (section) return { page: 'admin', section };
  const viewer = /^\/sessions\/([^/]+)$/.exec(path);
  if (viewer?.[1]) return { page: 'viewer', sessionId: decodeURIComponent(viewer[1]) };
  const share = /^\/share\/([^/]+)$/.exec(path);
  if (share?.[1]) return { page: 'share', token: decodeURIComponent(share[1]) };
  return { page: 'not-found', path };
}

export const paths = {
  catalog: '#/',
  sessions: '#/sessions',
  signin: '#/signin',
  viewer: (sessionId: string) => `#/sessions/${encodeURIComponent(sessionId)}`,
  admin: (section: AdminSection = 'apps') => `#/admin/${section}`,
};

/** `replace` swaps the current history entry, for redirects the Back button should skip. */
export function navigate(href: string, options: { replace?: boolean } = {}): void {
  const hash = `#${href.replace(/^#/, '')}`;
  if (options.replace) window.location.replace(hash);
  else window.location.hash = hash;
}

/** Hash routing keeps every page reachable from a static file server with no rewrite rules. */
export function useHashRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
