import { useCallback, useRef, useState } from 'react';
import { errorMessage } from '../api/http';
import { useLoader, type Loaded } from './useLoader';

export interface Paged<T> {
  items: T[];
  /** The cursor of the page after this one; null on the last. */
  next: string | null;
}

export interface PagedLoaded<T extends { id: string }> extends Loaded<T[]> {
  /** Whether the server has more after what is loaded. */
  hasMore: boolean;
  loadingMore: boolean;
  /** Appends the next page; a failure shows as `error`. */
  loadMore: () => void;
}

/** Loads the first page (again on `reload`), and the following ones on `loadMore`. */
export function usePagedLoader<T extends { id: string }>(load: (cursor: string | undefined, signal?: AbortSignal) => Promise<Paged<T>>): PagedLoaded<T> {
  const [next, setNext] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<string | null>(null);
  // A reload starts over: an older loadMore's answer belongs to the list before it.
  const generation = useRef(0);
  const loaded = useLoader(async (signal) => {
    generation.current++;
    const page = await load(undefined, signal);
    setNext(page.next);
    return page.items;
  });
  const { setData } = loaded;

  const loadMore = useCallback(() => {
    if (next === null || loadingMore) return;
    const asked = generation.current;
    setLoadingMore(true);
    setMoreError(null);
    load(next)
      .then((page) => {
        if (asked !== generation.current) return;
        setData((list) => {
          const have = new Set((list ?? []).map((item) => item.id));
          return [...(list ?? []), ...page.items.filter((item) => !have.has(item.id))];
        });
        setNext(page.next);
      })
      .catch((err: unknown) => {
        if (asked === generation.current) setMoreError(errorMessage(err));
      })
      .finally(() => setLoadingMore(false));
  }, [next, loadingMore, load, setData]);

  const clearError = useCallback(() => {
    setMoreError(null);
    loaded.clearError();
  }, [loaded]);
  return { ...loaded, error: loaded.error ?? moreError, clearError, hasMore: next !== null, loadingMore, loadMore };
}
