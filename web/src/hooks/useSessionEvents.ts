import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { refreshSession } from '../auth/refresh';
import { browserStream, LiveEvents, type SessionEvent } from './liveEvents';

export type { SessionEvent } from './liveEvents';

/**
 * Listens to the server's session changes (Server-Sent Events) and calls `onEvent` for each.
 * Answers whether the stream is healthy: while it is, callers poll slowly; when it fails
 * they poll as before. Streams end with their access token and are opened again with a
 * refreshed one, without a gap (see LiveEvents).
 */
export function useSessionEvents(onEvent: (event: SessionEvent) => void, scope: 'mine' | 'all' = 'mine'): boolean {
  const handler = useRef(onEvent);
  useLayoutEffect(() => {
    handler.current = onEvent;
  });
  const [healthy, setHealthy] = useState(false);

  useEffect(() => {
    if (typeof EventSource === 'undefined') return;
    const live = new LiveEvents({
      url: scope === 'all' ? '/api/events?scope=all' : '/api/events',
      connect: browserStream,
      refresh: refreshSession,
      onEvent: (event) => handler.current(event),
      onHealth: setHealthy,
    });
    live.start();
    return () => {
      live.stop();
      setHealthy(false);
    };
  }, [scope]);

  return healthy;
}
