import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';

/**
 * Runs `task` now and then again `intervalMs` after each run settles (not on a fixed
 * clock, so a slow server never gets overlapping requests). `null` stops polling.
 * While the tab is hidden the poll idles and catches up as soon as it is visible again.
 * Returns `refresh`, which runs the task immediately and restarts the timer.
 */
export function usePoll(task: (signal: AbortSignal) => Promise<void>, intervalMs: number | null): () => void {
  const taskRef = useRef(task);
  useLayoutEffect(() => {
    taskRef.current = task;
  });
  const [nonce, setNonce] = useState(0);

  useEffect(() => {
    if (intervalMs === null) return;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let pendingWhileHidden = false;

    const run = async () => {
      if (controller.signal.aborted || running) return;
      if (document.visibilityState === 'hidden') {
        pendingWhileHidden = true;
        return;
      }
      running = true;
      try {
        await taskRef.current(controller.signal);
      } catch {
        // The task reports its own errors; a throw must not end the polling loop.
      } finally {
        running = false;
      }
      if (!controller.signal.aborted) timer = setTimeout(run, intervalMs);
    };

    const onVisibility = () => {
      if (document.visibilityState === 'visible' && pendingWhileHidden) {
        pendingWhileHidden = false;
        void run();
      }
    };

    document.addEventListener('visibilitychange', onVisibility);
    void run();
    return () => {
      controller.abort();
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [intervalMs, nonce]);

  return useCallback(() => setNonce((n) => n + 1), []);
}
