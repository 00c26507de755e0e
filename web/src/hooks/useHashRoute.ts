import { useEffect, useState } from 'react';

export type Route =
  | { page: 'catalog' }
  | { page: 'sessions' }
  | { page: 'viewer'; sessionId: string }
  | { page: 'not-found'; path: string };

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/\/+$/, '') || '/';
  if (path === '/' || path === '/catalog') return { page: 'catalog' };
  if (path === '/sessions') return { page: 'sessions' };
  const viewer = /^\/sessions\/([^/]+)$/.exec(path);
  if (viewer?.[1]) return { page: 'viewer', sessionId: decodeURIComponent(viewer[1]) };
  return { page: 'not-found', path };
}

export const paths = {
  catalog: '#/',
  sessions: '#/sessions',
  viewer: (sessionId: string) => `#/sessions/${encodeURIComponent(sessionId)}`,
};

export function navigate(href: string): void {
  window.location.hash = href.replace(/^#/, '');
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
