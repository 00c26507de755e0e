import { useCallback, useRef, useState } from 'react';
import { errorMessage } from '../api/http';
import type { Session, SessionStatus } from '../contract';
import { listSessions } from './sessionsApi';
import { usePoll } from '../hooks/usePoll';
import { useSessionEvents } from '../hooks/useSessionEvents';
import { mergeFirstPage } from './sessionPages';

interface Options {
  /** Narrows an admin's list (everyone's) to one person. */
  userId: string | undefined;
  /** Only sessions with one of these statuses; all when absent. */
  statuses?: readonly SessionStatus[];
  intervalMs: number;
  /** Whose changes the server's event stream should announce: `all` for an admin's list of everyone's. */
  liveScope?: 'mine' | 'all';
  /** Put before the reason when loading fails, e.g. "Could not load your sessions". */
  loadFailure: string;
}

export interface SessionList {
  /** null until the first load succeeds (and after `clear`). */
  sessions: Session[] | null;
  loadError: string | null;
  dismissLoadError: () => void;
  /** Loads the first page again now. */
  refresh: () => void;
  /** Whether the server has older sessions than those shown. */
  hasMore: boolean;
  /** Whether a `loadMore` is under way. */
  loadingMore: boolean;
  /** Appends the next page of older sessions. */
  loadMore: () => void;
  /** Puts a session the server just answered with in place of its old copy. */
  replace: (updated: Session) => void;
  /** Forgets the list, so it shows as loading until the next answer. */
  clear: () => void;
}

/** How often the list is polled while the server's event stream announces changes: a safety net only. */
const LIVE_POLL_MS = 60_000;

/**
 * The sessions list, newest first, a page at a time. Polling reloads the first page only
 * (where new and changing sessions are); pages loaded with `loadMore` stay below it.
 * A later successful load clears a load failure.
 */
export function useSessionList({ userId, statuses, intervalMs, liveScope = 'mine', loadFailure }: Options): SessionList {
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  // Once a later page is loaded, its cursor says where the next one starts, not the first page's.
  const extended = useRef(false);
  // Bumped by `clear`: an answer to a request made before it belongs to another list.
  const generation = useRef(0);

  // Every announced change reloads the first page; polling goes on, slowly while announcements arrive.
  const live = useSessionEvents(() => refreshRef.current(), liveScope);
  const pollMs = live ? Math.max(intervalMs, LIVE_POLL_MS) : intervalMs;
  const refreshRef = useRef(() => {});
  const refresh = usePoll(async (signal) => {
    const asked = generation.current;
    try {
      const page = await listSessions({ userId, statuses, signal });
      if (asked !== generation.current) return;
      setSessions((shown) => mergeFirstPage(page.sessions, shown));
      if (!extended.current) setNextCursor(page.next_cursor);
      setLoadError(null);
    } catch (err) {
      if (signal.aborted || asked !== generation.current) return;
      setLoadError(`${loadFailure}: ${errorMessage(err)}`);
    }
  }, pollMs);

  refreshRef.current = refresh;

  const loadMore = useCallback(() => {
    if (nextCursor === null || loadingMore) return;
    const asked = generation.current;
    setLoadingMore(true);
    listSessions({ userId, statuses, cursor: nextCursor })
      .then((page) => {
        if (asked !== generation.current) return;
        extended.current = true;
        setSessions((shown) => {
          const have = new Set((shown ?? []).map((s) => s.id));
          return [...(shown ?? []), ...page.sessions.filter((s) => !have.has(s.id))];
        });
        setNextCursor(page.next_cursor);
      })
      .catch((err: unknown) => {
        if (asked === generation.current) setLoadError(`${loadFailure}: ${errorMessage(err)}`);
      })
      .finally(() => setLoadingMore(false));
  }, [nextCursor, loadingMore, userId, statuses, loadFailure]);

  const dismissLoadError = useCallback(() => setLoadError(null), []);
  const replace = useCallback((updated: Session) => setSessions((prev) => prev?.map((s) => (s.id === updated.id ? updated : s)) ?? prev), []);
  const clear = useCallback(() => {
    generation.current++;
    extended.current = false;
    setSessions(null);
    setNextCursor(null);
  }, []);
  return { sessions, loadError, dismissLoadError, refresh, hasMore: nextCursor !== null, loadingMore, loadMore, replace, clear };
}
