import { useEffect, useLayoutEffect, useRef, useState } from 'react';

/** What `GET /api/events` says changed; `id` is absent when only the queue moved, or on a resync. */
export interface SessionEvent {
  id?: string;
  status?: string;
}

/** How long to wait before trying again once the server refused the stream (over its limit, signed out). */
const REOPEN_MS = 60_000;

/**
 * Listens to the server's session changes (Server-Sent Events) and calls `onEvent` for each.
 * Answers whether the stream is healthy: while it is, callers poll slowly; when it fails
 * they poll as before. EventSource reconnects by itself after a dropped connection; a
 * refused one (429, 401) is tried again after a minute.
 */
export function useSessionEvents(onEvent: (event: SessionEvent) => void, scope: 'mine' | 'all' = 'mine'): boolean {
  const handler = useRef(onEvent);
  useLayoutEffect(() => {
    handler.current = onEvent;
  });
  const [healthy, setHealthy] = useState(false);

  useEffect(() => {
    if (typeof EventSource === 'undefined') return;
    let source: EventSource | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = () => {
      source = new EventSource(scope === 'all' ? '/api/events?scope=all' : '/api/events');
      const fire = (event: MessageEvent<string>) => {
        try {
          handler.current(JSON.parse(event.data) as SessionEvent);
        } catch {
          handler.current({});
        }
      };
      source.addEventListener('ready', () => setHealthy(true));
      source.addEventListener('session', fire);
      source.addEventListener('queue', fire);
      // Changes may have been missed while the server's channel was down.
      source.addEventListener('resync', fire);
      source.onerror = () => {
        setHealthy(false);
        if (source?.readyState === EventSource.CLOSED) timer = setTimeout(open, REOPEN_MS);
      };
    };
    open();
    return () => {
      clearTimeout(timer);
      source?.close();
      setHealthy(false);
    };
  }, [scope]);

  return healthy;
}
