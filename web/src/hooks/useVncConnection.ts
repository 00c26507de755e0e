import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { afterStreamEnd, describeStreamEnd, reconnectsBeforeRecheck, type Stream, type StreamEnd } from '../sessions/streamEnd';

/** A stream that stayed up this long has proved itself: its retry budget fills up again. */
const STABLE_AFTER_MS = 10_000;

interface Options {
  /** The session is running, so a stream is wanted. Anything else resets the connection. */
  running: boolean;
  /**
   * Called when a stream ends, before deciding anything: the close is often the first sign
   * that the session itself ended. Resolves true when reconnecting still makes sense.
   */
  recheck: () => Promise<boolean>;
}

export interface VncConnection {
  stream: Stream;
  /** Key the VncScreen with this: a new value mounts a fresh connection. */
  attempt: number;
  onConnect: () => void;
  onEnd: (end: StreamEnd) => void;
  /** The person asked: a fresh connection with a full retry budget. */
  reconnect: () => void;
  /** The session is being ended from this page: whatever the stream does next is expected. */
  hold: () => void;
  /** Ending failed after all; stream ends mean something again. */
  release: () => void;
}

/**
 * Connect, and reconnect by itself a few times when the stream drops (at once when Sortie
 * closed it to restart, soon after a dropped connection, else after RETRY_DELAYS_MS), unless
 * the close says retrying cannot help; then the person decides.
 */
export function useVncConnection({ running, recheck }: Options): VncConnection {
  const [stream, setStream] = useState<Stream>({ state: 'connecting' });
  const [attempt, setAttempt] = useState(0);
  const retries = useRef(0);
  const retryTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const stableTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const held = useRef(false);
  const mounted = useRef(true);
  const recheckRef = useRef(recheck);
  useLayoutEffect(() => {
    recheckRef.current = recheck;
  });

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      clearTimeout(retryTimer.current);
      clearTimeout(stableTimer.current);
    };
  }, []);

  // Each new session run starts with a fresh connection budget.
  useEffect(() => {
    if (!running) {
      clearTimeout(retryTimer.current);
      retries.current = 0;
      setStream({ state: 'connecting' });
    }
  }, [running]);

  const reconnect = useCallback(() => {
    clearTimeout(retryTimer.current);
    retries.current = 0;
    setStream({ state: 'connecting' });
    setAttempt((n) => n + 1);
  }, []);

  const onConnect = useCallback(() => {
    setStream({ state: 'connected' });
    // Refill the retry budget only once the stream has proved stable, so a desktop
    // that accepts and then drops every connection does not loop forever.
    clearTimeout(stableTimer.current);
    stableTimer.current = setTimeout(() => {
      retries.current = 0;
    }, STABLE_AFTER_MS);
  }, []);

  const settle = useCallback(async (end: StreamEnd) => {
    clearTimeout(stableTimer.current);
    if (held.current) return;
    const message = describeStreamEnd(end);
    const next = afterStreamEnd(end, retries.current);
    const again = () => {
      setStream({ state: 'connecting', again: true });
      setAttempt((n) => n + 1);
    };
    const checked = recheckRef.current();
    // Sortie handed the stream on (a replica is restarting): straight back, the session is
    // read alongside; if it ended meanwhile, the read and the refused connection both say so.
    if (next.retry && reconnectsBeforeRecheck(next)) {
      retries.current = next.attempt;
      return again();
    }
    const readStarted = Date.now();
    const carryOn = await checked;
    if (!mounted.current || held.current || !carryOn) return;
    if (!next.retry) {
      setStream({ state: 'lost', message, everConnected: end.wasConnected });
      return;
    }
    retries.current = next.attempt;
    if (next.delayMs === 0) return again();
    setStream({ state: 'retrying', attempt: next.attempt, of: next.of, message, quiet: next.quiet });
    // The read counts toward the delay.
    retryTimer.current = setTimeout(again, Math.max(0, next.delayMs - (Date.now() - readStarted)));
  }, []);

  const onEnd = useCallback((end: StreamEnd) => void settle(end), [settle]);

  const hold = useCallback(() => {
    held.current = true;
    clearTimeout(retryTimer.current);
  }, []);
  const release = useCallback(() => {
    held.current = false;
  }, []);

  return { stream, attempt, onConnect, onEnd, reconnect, hold, release };
}
