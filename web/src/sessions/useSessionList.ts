import { useCallback, useState } from 'react';
import { errorMessage } from '../api/http';
import type { Session } from '../contract';
import { listSessions } from './sessionsApi';
import { usePoll } from '../hooks/usePoll';

interface Options {
  /** Narrows an admin's list (everyone's) to one person. */
  userId: string | undefined;
  intervalMs: number;
  /** Put before the reason when loading fails, e.g. "Could not load your sessions". */
  loadFailure: string;
}

export interface SessionList {
  /** null until the first load succeeds (and after `clear`). */
  sessions: Session[] | null;
  loadError: string | null;
  dismissLoadError: () => void;
  /** Loads again now. */
  refresh: () => void;
  /** Puts a session the server just answered with in place of its old copy. */
  replace: (updated: Session) => void;
  /** Forgets the list, so it shows as loading until the next answer. */
  clear: () => void;
}

/** The sessions list, polled; a later successful load clears a load failure. */
export function useSessionList({ userId, intervalMs, loadFailure }: Options): SessionList {
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);

  const refresh = usePoll(async (signal) => {
    try {
      const list = await listSessions({ userId, signal });
      setSessions(list);
      setLoadError(null);
    } catch (err) {
      if (signal.aborted) return;
      setLoadError(`${loadFailure}: ${errorMessage(err)}`);
    }
  }, intervalMs);

  const dismissLoadError = useCallback(() => setLoadError(null), []);
  const replace = useCallback((updated: Session) => setSessions((prev) => prev?.map((s) => (s.id === updated.id ? updated : s)) ?? prev), []);
  const clear = useCallback(() => setSessions(null), []);
  return { sessions, loadError, dismissLoadError, refresh, replace, clear };
}
