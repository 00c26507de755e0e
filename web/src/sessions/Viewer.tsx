import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import {
  ApiError,
  createSession,
  endSession,
  errorMessage,
  getSession,
  isActive,
  websocketUrl,
  type Session,
} from '../api';
import { elapsedSeconds } from '../format';
import { useFullscreen } from '../hooks/useFullscreen';
import { navigate, paths } from '../hooks/useHashRoute';
import { useNow } from '../hooks/useNow';
import { usePoll } from '../hooks/usePoll';
import { AppIcon } from './AppIcon';
import { FullscreenIcon, PowerIcon, ReconnectIcon } from './icons';
import { ErrorBanner } from './ErrorBanner';
import { Spinner } from './Spinner';
import { StatusBadge } from './StatusBadge';
import { VncScreen, type StreamEnd } from './VncScreen';

type Stream =
  | { state: 'connecting' }
  | { state: 'connected' }
  | { state: 'retrying'; attempt: number; message: string }
  | { state: 'lost'; message: string; everConnected: boolean };

/** Delays before each automatic reconnect; after these run out the person decides. */
const RETRY_DELAYS_MS = [1000, 3000];

/** How often to re-read the session: fast while it boots, slowly once it only needs watching. */
function pollInterval(session: Session | null, gone: boolean): number | null {
  if (gone) return null;
  if (!session || session.status === 'creating') return 500;
  if (session.status === 'queued') return 1000;
  if (session.status === 'running') return 5000;
  return null;
}

/**
 * Every close code Sortie's relay uses (server/src/stream/close-codes.ts), phrased for a
 * person; shown when the relay sent no reason. A server test checks that none is missing.
 */
const STREAM_CLOSE_MESSAGES: Record<number, string> = {
  4400: 'The viewer and the desktop could not agree on how to start the stream.',
  4401: 'Your sign-in has expired. Sign in again to see the desktop.',
  4403: 'This page is not allowed to open the desktop stream. Open Sortie from its own address.',
  4404: 'Sortie does not know this session.',
  4408: 'The connection stopped keeping up with the desktop, so Sortie closed it. Reconnect to carry on.',
  4409: 'The session is not ready for a connection yet.',
  4410: 'The session has ended.',
  4413: 'The viewer sent more than the desktop stream accepts while connecting.',
  4429: 'This session is already open in as many windows as allowed. Close one and reconnect.',
  4502: 'The desktop stream is unavailable.',
};

function describeStreamEnd(end: StreamEnd): string {
  if (end.reason) return end.reason;
  const known = end.code === null ? undefined : STREAM_CLOSE_MESSAGES[end.code];
  if (known) return known;
  return end.wasConnected ? 'The connection to the desktop was lost.' : 'Could not connect to the desktop.';
}

export function Viewer({ sessionId }: { sessionId: string }) {
  const [session, setSession] = useState<Session | null>(null);
  const [missing, setMissing] = useState<string | null>(null);
  const [pollProblem, setPollProblem] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [ending, setEnding] = useState(false);
  const [relaunching, setRelaunching] = useState(false);
  const [stream, setStream] = useState<Stream>({ state: 'connecting' });
  const [connection, setConnection] = useState(0);

  const rootRef = useRef<HTMLDivElement>(null);
  const retries = useRef(0);
  const retryTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const stableTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const endedHere = useRef(false);
  const mounted = useRef(true);
  const fullscreen = useFullscreen(rootRef);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      clearTimeout(retryTimer.current);
      clearTimeout(stableTimer.current);
    };
  }, []);

  usePoll(
    async (signal) => {
      try {
        const latest = await getSession(sessionId, signal);
        setSession(latest);
        setPollProblem(null);
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status === 404) setMissing(err.message);
        else setPollProblem(errorMessage(err));
      }
    },
    pollInterval(session, missing !== null),
  );

  const status = session?.status;
  const now = useNow(1000, status === 'creating');

  // Each new session run starts with a fresh connection budget.
  useEffect(() => {
    if (status !== 'running') {
      clearTimeout(retryTimer.current);
      retries.current = 0;
      setStream({ state: 'connecting' });
    }
  }, [status]);

  const reconnect = useCallback(() => {
    clearTimeout(retryTimer.current);
    retries.current = 0;
    setStream({ state: 'connecting' });
    setConnection((n) => n + 1);
  }, []);

  const onConnect = useCallback(() => {
    setStream({ state: 'connected' });
    // Refill the retry budget only once the stream has proved stable, so a desktop
    // that accepts and then drops every connection does not loop forever.
    clearTimeout(stableTimer.current);
    stableTimer.current = setTimeout(() => {
      retries.current = 0;
    }, 10_000);
  }, []);

  const onStreamEnd = useCallback(
    async (end: StreamEnd) => {
      clearTimeout(stableTimer.current);
      if (endedHere.current) return;
      const message = describeStreamEnd(end);
      // The stream closing is often the first sign that the session itself ended;
      // ask the API before deciding whether reconnecting makes sense.
      let latest: Session | null = null;
      try {
        latest = await getSession(sessionId);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404 && mounted.current) {
          setMissing(err.message);
          return;
        }
      }
      if (!mounted.current || endedHere.current) return;
      if (latest) {
        setSession(latest);
        if (!isActive(latest.status)) return;
        if (latest.status === 'creating') return; // the viewer goes back to its progress state
      }
      const attempt = retries.current;
      const delay = RETRY_DELAYS_MS[attempt];
      if (delay === undefined) {
        setStream({ state: 'lost', message, everConnected: end.wasConnected });
        return;
      }
      retries.current = attempt + 1;
      setStream({ state: 'retrying', attempt: attempt + 1, message });
      retryTimer.current = setTimeout(() => {
        setStream({ state: 'connecting' });
        setConnection((n) => n + 1);
      }, delay);
    },
    [sessionId],
  );

  const end = async () => {
    if (!session) return;
    setActionError(null);
    setEnding(true);
    endedHere.current = true;
    clearTimeout(retryTimer.current);
    try {
      setSession(await endSession(session.id));
    } catch (err) {
      endedHere.current = false;
      setActionError(`Could not end the session: ${errorMessage(err)}`);
    } finally {
      if (mounted.current) setEnding(false);
    }
  };

  const relaunch = async () => {
    if (!session) return;
    setActionError(null);
    setRelaunching(true);
    try {
      const next = await createSession(session.app_id);
      navigate(paths.viewer(next.id));
    } catch (err) {
      setActionError(`Could not launch ${session.app_name}: ${errorMessage(err)}`);
      if (mounted.current) setRelaunching(false);
    }
  };

  const appName = session?.app_name || 'Session';
  const active = session ? isActive(session.status) : false;

  return (
    <div className={`viewer${fullscreen.active ? ' viewer--fullscreen' : ''}`} ref={rootRef}>
      <div className="viewer__bar">
        <div className="viewer__identity">
          {session && <AppIcon name={appName} src="" />}
          <div className="viewer__titles">
            <h1 className="viewer__name">{session ? appName : missing ? 'Session not found' : 'Loading…'}</h1>
            {session && (
              <div className="viewer__sub">
                <StatusBadge status={session.status} testId="viewer-status" />
                {status === 'running' && <StreamLabel stream={stream} />}
              </div>
            )}
          </div>
        </div>
        <div className="viewer__actions">
          {status === 'running' && (
            <>
              <button type="button" className="btn btn--dark" onClick={reconnect} data-testid="reconnect" title="Reconnect">
                <ReconnectIcon /> <span className="btn__label">Reconnect</span>
              </button>
              {fullscreen.supported && (
                <button type="button" className="btn btn--dark" onClick={fullscreen.toggle} data-testid="fullscreen" title={fullscreen.active ? 'Exit full screen' : 'Full screen'}>
                  <FullscreenIcon exit={fullscreen.active} />{' '}
                  <span className="btn__label">{fullscreen.active ? 'Exit full screen' : 'Full screen'}</span>
                </button>
              )}
            </>
          )}
          {active && (
            <button
              type="button"
              className="btn btn--danger"
              onClick={end}
              disabled={ending}
              data-testid="end-session"
              title="End session"
            >
              {ending ? <Spinner size="sm" /> : <PowerIcon />}{' '}
              <span className="btn__label">{ending ? 'Ending…' : 'End session'}</span>
            </button>
          )}
        </div>
      </div>

      <ErrorBanner message={actionError} onDismiss={() => setActionError(null)} />
      {pollProblem && (
        <p className="viewer__notice" role="status">
          Lost contact with Sortie ({pollProblem}). Still trying…
        </p>
      )}

      <div className="viewer__stage">
        {missing !== null && (
          <Panel tone="error" title="Session not found">
            <p className="panel__text" data-testid="viewer-reason">
              {missing}
            </p>
            <div className="panel__actions">
              <a className="btn btn--primary" href={paths.catalog}>
                Back to catalog
              </a>
              <a className="btn btn--secondary" href={paths.sessions}>
                My sessions
              </a>
            </div>
          </Panel>
        )}

        {!session && missing === null && (
          <div className="stage-center">
            <Spinner size="lg" label="Loading session" />
          </div>
        )}

        {status === 'queued' && session && (
          <Panel tone="progress" title={`${appName} is waiting for room`} icon={<Spinner size="lg" />}>
            <p className="panel__text" data-testid="viewer-queue">
              queued — place {session.queue_position ?? '…'}
            </p>
            <p className="panel__hint">
              Sortie is running as many sessions as it may at once. Yours starts by itself when one ends; keep this page open.
            </p>
          </Panel>
        )}

        {status === 'creating' && session && (
          <Panel tone="progress" title={`Starting ${appName}…`} icon={<Spinner size="lg" />}>
            <p className="panel__text">
              <span className="elapsed">{elapsedSeconds(session.created_at, now)} s</span> elapsed
            </p>
            <p className="panel__hint">
              {elapsedSeconds(session.created_at, now) < 20
                ? 'Preparing a fresh desktop for you. This usually takes a few seconds.'
                : 'Still working. The first start of an app can take a minute while its image downloads.'}
            </p>
          </Panel>
        )}

        {status === 'failed' && session && (
          <Panel tone="error" title={`${appName} could not start`}>
            <p className="panel__reason" data-testid="viewer-reason">
              {session.reason || 'Sortie did not say why.'}
            </p>
            <RelaunchActions label="Try again" testId="try-again" busy={relaunching} onRelaunch={relaunch} />
          </Panel>
        )}

        {status === 'terminated' && session && (
          <Panel tone="neutral" title="Session ended">
            {session.reason ? (
              <p className="panel__reason panel__reason--neutral" data-testid="viewer-reason">
                {session.reason}
              </p>
            ) : (
              <p className="panel__text">{appName} is no longer running.</p>
            )}
            <RelaunchActions label="Launch again" testId="launch-again" busy={relaunching} onRelaunch={relaunch} />
          </Panel>
        )}

        {status === 'running' && session && (
          <>
            <VncScreen key={connection} url={websocketUrl(session)} onConnect={onConnect} onEnd={onStreamEnd} />
            {stream.state !== 'connected' && (
              <div className="stage-overlay">
                {stream.state === 'connecting' && (
                  <Panel tone="progress" title="Connecting to the desktop…" icon={<Spinner size="lg" />} compact />
                )}
                {stream.state === 'retrying' && (
                  <Panel tone="progress" title="Reconnecting…" icon={<Spinner size="lg" />} compact>
                    <p className="panel__text" data-testid="stream-message">
                      {stream.message} Retrying (attempt {stream.attempt} of {RETRY_DELAYS_MS.length}).
                    </p>
                  </Panel>
                )}
                {stream.state === 'lost' && (
                  <Panel tone="error" title={stream.everConnected ? 'Connection lost' : 'Cannot reach the desktop'} compact>
                    <p className="panel__text" data-testid="stream-message">
                      {stream.message}
                    </p>
                    <div className="panel__actions">
                      <button type="button" className="btn btn--primary" onClick={reconnect}>
                        <ReconnectIcon /> Reconnect
                      </button>
                    </div>
                  </Panel>
                )}
              </div>
            )}
          </>
        )}
      </div>
    </div>
  );
}

function StreamLabel({ stream }: { stream: Stream }) {
  const text = {
    connecting: 'Connecting…',
    connected: 'Connected',
    retrying: 'Reconnecting…',
    lost: 'Disconnected',
  }[stream.state];
  return <span className={`stream-label stream-label--${stream.state}`}>{text}</span>;
}

/** Under a session that stopped: back to the catalog, or start the same app again. */
function RelaunchActions({ label, testId, busy, onRelaunch }: { label: string; testId: string; busy: boolean; onRelaunch: () => void }) {
  return (
    <div className="panel__actions">
      <a className="btn btn--secondary" href={paths.catalog}>
        Back to catalog
      </a>
      <button type="button" className="btn btn--primary" onClick={onRelaunch} disabled={busy} data-testid={testId}>
        {busy && <Spinner size="sm" />} {label}
      </button>
    </div>
  );
}

interface PanelProps {
  tone: 'progress' | 'error' | 'neutral';
  title: string;
  icon?: ReactNode;
  compact?: boolean;
  children?: ReactNode;
}

function Panel({ tone, title, icon, compact, children }: PanelProps) {
  return (
    <section className={`panel panel--${tone}${compact ? ' panel--compact' : ''}`} aria-live="polite">
      {icon ?? <PanelIcon tone={tone} />}
      <h2 className="panel__title">{title}</h2>
      {children}
    </section>
  );
}

function PanelIcon({ tone }: { tone: PanelProps['tone'] }) {
  if (tone === 'error') {
    return (
      <svg className="panel__icon panel__icon--error" viewBox="0 0 24 24" aria-hidden="true">
        <circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" strokeWidth="1.8" />
        <path d="M12 7v6" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
        <circle cx="12" cy="16.5" r="1.2" fill="currentColor" />
      </svg>
    );
  }
  return (
    <svg className="panel__icon" viewBox="0 0 24 24" aria-hidden="true">
      <rect x="3" y="4" width="18" height="13" rx="2" fill="none" stroke="currentColor" strokeWidth="1.8" />
      <path d="M8 21h8M12 17v4" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" />
    </svg>
  );
}
