import { useCallback, useEffect, useLayoutEffect, useRef, useState, type Dispatch, type SetStateAction } from 'react';
import { errorMessage } from '../api/http';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  reload: () => void;
  clearError: () => void;
  setData: Dispatch<SetStateAction<T | null>>;
}

/** Loads once (and again on `reload`); keeps the last good data while a reload is under way. */
export function useLoader<T>(load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const loadRef = useRef(load);
  useLayoutEffect(() => {
    loadRef.current = load;
  });
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [nonce, setNonce] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    loadRef
      .current(controller.signal)
      .then((value) => {
        setData(value);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(errorMessage(err));
      });
    return () => controller.abort();
  }, [nonce]);

  const reload = useCallback(() => setNonce((n) => n + 1), []);
  const clearError = useCallback(() => setError(null), []);
  return { data, error, reload, clearError, setData };
}
