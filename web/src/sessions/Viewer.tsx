import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react';
import type RFB from '@novnc/novnc';
import { ApiError, errorMessage } from '../api/http';
import { DEFAULT_CLIPBOARD, DEFAULT_FILE_TRANSFER, isActive, type App, type Session } from '../contract';
import { listApps } from '../catalog/catalogApi';
import { createSession, endSession, getSession, websocketUrl } from './sessionsApi';
import { elapsedSeconds } from '../ui/format';
import { useFullscreen } from '../hooks/useFullscreen';
import { navigate, paths } from '../hooks/useHashRoute';
import { useNow } from '../hooks/useNow';
import { usePoll } from '../hooks/usePoll';
import { useSessionEvents } from '../hooks/useSessionEvents';
import { useVncConnection } from '../hooks/useVncConnection';
import { useClipboardSync } from '../hooks/useClipboardSync';
import { useUploads } from '../hooks/useUploads';
import { AppIcon } from '../ui/AppIcon';
import { ClipboardIcon, CloseIcon, FolderIcon, FullscreenIcon, PowerIcon, ReconnectIcon } from '../ui/icons';
import { ErrorBanner } from '../ui/ErrorBanner';
import { Panel } from '../ui/Panel';
import { Spinner } from '../ui/Spinner';
import { StatusBadge } from './StatusBadge';
import { pollInterval, streamLabel, type Stream } from './streamEnd';
import { VncScreen } from './VncScreen';
import { ClipboardPanel } from './ClipboardPanel';
import { FilesPanel } from './FilesPanel';
import { UploadTray } from './UploadTray';
import { SharePanel } from './SharePanel';
import { useAuth } from '../auth/AuthContext';
import { clipboardDirections } from './clipboardPolicy';
import { DISPLAY_MODE_LABELS, DISPLAY_MODES, isDisplayMode, loadDisplayMode, saveDisplayMode, type DisplayMode } from './displayMode';
import { fileDirections } from './filePaths';
import { stepLines } from './launchProgress';

type Drawer = 'clipboard' | 'files' | 'share' | null;

const DRAWER_TITLES: Record<Exclude<Drawer, null>, string> = { clipboard: 'Clipboard', files: 'Files', share: 'Share' };

/** Floats at the stage's foot: no room taken from the desktop, no clicks taken from it. */
const WATCHED_NOTICE_STYLE = {
  position: 'absolute',
  left: 12,
  bottom: 12,
  maxWidth: 'calc(100% - 24px)',
  margin: 0,
  borderRadius: 8,
  background: 'rgb(11 13 18 / 0.85)',
  pointerEvents: 'none',
} as const;

function browserStorage(): Storage | undefined {
  try {
    return window.localStorage;
  } catch {
    return undefined;
  }
}

export function Viewer({ sessionId }: { sessionId: string }) {
  const [session, setSession] = useState<Session | null>(null);
  const [missing, setMissing] = useState<string | null>(null);
  const [pollProblem, setPollProblem] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [ending, setEnding] = useState(false);
  const [relaunching, setRelaunching] = useState(false);

  const rootRef = useRef<HTMLDivElement>(null);
  const stageRef = useRef<HTMLDivElement>(null);
  const mounted = useRef(true);
  const fullscreen = useFullscreen(rootRef);
  const [mode, setMode] = useState<DisplayMode>(() => loadDisplayMode(browserStorage()));
  const [drawer, setDrawer] = useState<Drawer>(null);
  const [dir, setDir] = useState('');
  const [filesChanged, setFilesChanged] = useState(0);
  const [dragging, setDragging] = useState(false);
  const [rfb, setRfb] = useState<RFB | null>(null);
  /** The session's app as the catalog has it; undefined until known, null when not listed. */
  const [app, setApp] = useState<App | null | undefined>(undefined);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  // Announced changes reload the session at once; once the stream has announced this one, polling slows to a safety net.
  const [announced, setAnnounced] = useState(false);
  const live = useSessionEvents((event) => {
    if (event.id !== undefined && event.id !== sessionId) return;
    if (event.id === sessionId) setAnnounced(true);
    reloadSession();
  });
  const interval = pollInterval(session, missing !== null);
  const reloadSession = usePoll(
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
    interval !== null && live && announced ? Math.max(interval, 15_000) : interval,
  );

  const status = session?.status;
  const now = useNow(1000, status === 'creating');

  // Someone else's session: shared with this person, or an admin's to watch. View only unless
  // the share gives control or the admin takes it (the relay enforces it either way).
  const { state: auth } = useAuth();
  const me = auth.status === 'signed-in' && auth.authEnabled ? auth.user : undefined;
  const sharedWithMe = session?.shared_with_me;
  const adminWatching = !!session && !!me && me.role === 'admin' && session.user_id !== me.id && !sharedWithMe;
  const [takeControl, setTakeControl] = useState(false);
  const viewOnly = sharedWithMe?.mode === 'view' || (adminWatching && !takeControl);
  const canShare = !!session && !sharedWithMe && !!me && (me.role === 'admin' || session.user_id === me.id);
  const watchers = session?.watched_by ?? [];

  // The app's clipboard and file_transfer settings shape the viewer's tools, offered once
  // they are known. The server and the VNC server enforce them; an app this person can no
  // longer list (or a catalog that does not answer) shows every tool and lets those refuse.
  const appId = session?.app_id;
  useEffect(() => {
    if (!appId) return;
    const controller = new AbortController();
    listApps(controller.signal)
      .then((apps) => setApp(apps.find((a) => a.id === appId) ?? null))
      .catch(() => {
        if (!controller.signal.aborted) setApp(null);
      });
    return () => controller.abort();
  }, [appId]);
  const clipboardSetting = app === undefined ? 'none' : (app?.clipboard ?? DEFAULT_CLIPBOARD);
  const fileSetting = app === undefined ? 'none' : (app?.file_transfer ?? DEFAULT_FILE_TRANSFER);
  const clip = viewOnly ? { toSession: false, fromSession: false } : clipboardDirections(clipboardSetting);
  // The files API is the owner's (and admins'); a share holder's stream is all a share gives.
  const files = sharedWithMe ? { upload: false, download: false } : fileDirections(fileSetting);
  const clipboard = useClipboardSync({ rfb, stageRef, toSession: clip.toSession, fromSession: clip.fromSession });
  const uploads = useUploads(sessionId, () => setFilesChanged((n) => n + 1));

  const chooseMode = (next: DisplayMode) => {
    setMode(next);
    saveDisplayMode(browserStorage(), next);
  };
  const toggleDrawer = (which: Exclude<Drawer, null>) => setDrawer((open) => (open === which ? null : which));

  // Files dragged anywhere over the viewer are caught, even where they cannot be dropped:
  // the browser's own handling of a dropped file is to open it in place of the desktop.
  const carriesFiles = (e: DragEvent) => e.dataTransfer.types.includes('Files');
  const droppable = status === 'running' && files.upload;
  const onDragOver = (e: DragEvent) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = droppable ? 'copy' : 'none';
    setDragging(droppable);
  };
  const onDragLeave = (e: DragEvent) => {
    if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
  };
  const onDrop = (e: DragEvent) => {
    setDragging(false);
    if (!carriesFiles(e)) return;
    e.preventDefault();
    if (!droppable) return;
    const dropped = Array.from(e.dataTransfer.files);
    if (dropped.length) uploads.add(dropped, dir);
  };

  // A stream that ended may mean the session ended: read it before reconnecting.
  const recheck = useCallback(async () => {
    let latest: Session;
    try {
      latest = await getSession(sessionId);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && mounted.current) {
        setMissing(err.message);
        return false;
      }
      return true; // Sortie did not answer; the retry budget decides
    }
    if (!mounted.current) return false;
    setSession(latest);
    // A session back in `creating` shows its progress panel, not a stream.
    return isActive(latest.status) && latest.status !== 'creating';
  }, [sessionId]);
  const vnc = useVncConnection({ running: status === 'running', recheck });
  const { stream } = vnc;

  const end = async () => {
    if (!session) return;
    setActionError(null);
    setEnding(true);
    vnc.hold();
    try {
      setSession(await endSession(session.id));
    } catch (err) {
      vnc.release();
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
    <div
      className={`viewer${fullscreen.active ? ' viewer--fullscreen' : ''}`}
      ref={rootRef}
      data-clipboard={app === undefined ? undefined : clipboardSetting}
      data-file-transfer={app === undefined ? undefined : fileSetting}
      onDragOver={onDragOver}
      onDragLeave={onDragLeave}
      onDrop={onDrop}
    >
      <div className="viewer__bar">
        <div className="viewer__identity">
          {session && <AppIcon name={appName} src="" />}
          <div className="viewer__titles">
            <h1 className="viewer__name">{session ? appName : missing ? 'Session not found' : 'Loading…'}</h1>
            {session && (
              <div className="viewer__sub">
                <StatusBadge status={session.status} testId="viewer-status" />
                {status === 'running' && <StreamLabel stream={stream} />}
                {session.recorded && (
                  <span className="viewer__recorded" style={{ color: "#f87171", fontWeight: 600 }} data-testid="viewer-recorded" title="Sortie records what this session shows; administrators can play it back">
                    This session is recorded
                  </span>
                )}
              </div>
            )}
          </div>
        </div>
        <div className="viewer__actions">
          {status === 'running' && (
            <>
              <label className="viewer__mode" title="How the desktop fits this window">
                <span className="btn__label">Display</span>
                <select
                  className="viewer__select"
                  value={mode}
                  onChange={(e) => isDisplayMode(e.target.value) && chooseMode(e.target.value)}
                  data-testid="display-mode"
                >
                  {DISPLAY_MODES.map((m) => (
                    <option key={m} value={m}>
                      {DISPLAY_MODE_LABELS[m]}
                    </option>
                  ))}
                </select>
              </label>
              {(clip.toSession || clip.fromSession) && (
                <button
                  type="button"
                  className={`btn btn--dark${drawer === 'clipboard' ? ' btn--pressed' : ''}`}
                  onClick={() => toggleDrawer('clipboard')}
                  aria-pressed={drawer === 'clipboard'}
                  data-testid="clipboard-toggle"
                  title="Clipboard"
                >
                  <ClipboardIcon /> <span className="btn__label">Clipboard</span>
                </button>
              )}
              {(files.upload || files.download) && (
                <button
                  type="button"
                  className={`btn btn--dark${drawer === 'files' ? ' btn--pressed' : ''}`}
                  onClick={() => toggleDrawer('files')}
                  aria-pressed={drawer === 'files'}
                  data-testid="files-toggle"
                  title="Files"
                >
                  <FolderIcon /> <span className="btn__label">Files</span>
                </button>
              )}
              {canShare && (
                <button
                  type="button"
                  className={`btn btn--dark${drawer === 'share' ? ' btn--pressed' : ''}`}
                  onClick={() => toggleDrawer('share')}
                  aria-pressed={drawer === 'share'}
                  data-testid="share-toggle"
                  title="Share"
                >
                  <span className="btn__label">Share</span>
                </button>
              )}
              {adminWatching && !takeControl && (
                <button type="button" className="btn btn--dark" onClick={() => setTakeControl(true)} data-testid="take-control" title="Take control (recorded in the audit log)">
                  <span className="btn__label">Take control</span>
                </button>
              )}
              <button type="button" className="btn btn--dark" onClick={vnc.reconnect} data-testid="reconnect" title="Reconnect">
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
          {active && !sharedWithMe && (
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
      {status === 'running' && sharedWithMe && (
        <p className="viewer__notice" role="status" data-testid="watching-notice">
          {sharedWithMe.mode === 'view' ? `Watching ${sharedWithMe.owner}'s session (view only)` : `${sharedWithMe.owner} shared this session with you; you have control`}
        </p>
      )}
      {status === 'running' && adminWatching && (
        <p className="viewer__notice" role="status" data-testid="watching-notice">
          {takeControl ? "You have taken control of this user's session as an admin" : "Watching this user's session as an admin (view only)"}
        </p>
      )}
      {pollProblem && (
        <p className="viewer__notice" role="status">
          Lost contact with Sortie ({pollProblem}). Still trying…
        </p>
      )}

      <div
        className={`viewer__stage${dragging ? ' viewer__stage--drop' : ''}`}
        ref={stageRef}
        data-testid="viewer-stage"
      >
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
            <LaunchSteps progress={session.progress} now={now} />
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
            <VncScreen
              key={vnc.attempt}
              url={websocketUrl(session) + (adminWatching && takeControl ? '?control=1' : '')}
              mode={mode}
              onConnect={vnc.onConnect}
              onEnd={vnc.onEnd}
              onRfb={setRfb}
              viewOnly={viewOnly}
            />
            {!sharedWithMe && !adminWatching && watchers.length > 0 && (
              // Over the desktop, not above it: a notice that took room would shrink the stage,
              // and in "Fit to window" resize the desktop each time someone starts or stops
              // watching, which also drops the viewer joining right then (the VNC server closes
              // a client that has not yet said it can follow a change of size).
              <p className="viewer__notice" role="status" data-testid="watched-notice" style={WATCHED_NOTICE_STYLE}>
                Being watched by {watchers.map((w) => `${w.username}${w.via === 'admin' ? ' (admin)' : ''}${w.mode === 'control' ? ' with control' : ''}`).join(', ')}
              </p>
            )}
            {dragging && (
              <div className="stage-drop" aria-hidden="true">
                Drop to upload to {dir === '' ? 'the home folder' : dir}
              </div>
            )}
            {drawer && (
              <aside className="drawer" aria-label={DRAWER_TITLES[drawer]}>
                <div className="drawer__head">
                  <h2 className="drawer__title">{DRAWER_TITLES[drawer]}</h2>
                  <button type="button" className="drawer__close" onClick={() => setDrawer(null)} aria-label="Close">
                    <CloseIcon />
                  </button>
                </div>
                {drawer === 'share' ? (
                  <SharePanel sessionId={session.id} refreshKey={JSON.stringify(watchers)} />
                ) : drawer === 'files' ? (
                  <FilesPanel
                    sessionId={session.id}
                    dir={dir}
                    onDir={setDir}
                    upload={files.upload}
                    download={files.download}
                    onUpload={(picked) => uploads.add(picked, dir)}
                    refreshKey={filesChanged}
                  />
                ) : (
                  <ClipboardPanel sync={clipboard} toSession={clip.toSession} fromSession={clip.fromSession} />
                )}
              </aside>
            )}
            <UploadTray items={uploads.items} onDismiss={uploads.dismiss} onClear={uploads.clearFinished} />
            {((stream.state === 'connecting' && stream.again) || (stream.state === 'retrying' && stream.quiet)) && (
              <div className="stage-reconnecting" role="status" data-testid="reconnecting">
                <Spinner size="sm" /> Reconnecting…
              </div>
            )}
            {stream.state !== 'connected' && !(stream.state === 'connecting' && stream.again) && !(stream.state === 'retrying' && stream.quiet) && (
              <div className="stage-overlay">
                {stream.state === 'connecting' && (
                  <Panel tone="progress" title="Connecting to the desktop…" icon={<Spinner size="lg" />} compact />
                )}
                {stream.state === 'retrying' && (
                  <Panel tone="progress" title="Reconnecting…" icon={<Spinner size="lg" />} compact>
                    <p className="panel__text" data-testid="stream-message">
                      {stream.message} Retrying (attempt {stream.attempt} of {stream.of}).
                    </p>
                  </Panel>
                )}
                {stream.state === 'lost' && (
                  <Panel tone="error" title={stream.everConnected ? 'Connection lost' : 'Cannot reach the desktop'} compact>
                    <p className="panel__text" data-testid="stream-message">
                      {stream.message}
                    </p>
                    <div className="panel__actions">
                      <button type="button" className="btn btn--primary" onClick={vnc.reconnect}>
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

/** What the launch is doing now, with a live time, under the steps it finished and what they took. */
function LaunchSteps({ progress, now }: { progress: Session['progress']; now: number }) {
  const lines = stepLines(progress, now);
  if (lines.length === 0) return null;
  return (
    <ol className="launch-steps" data-testid="launch-steps" aria-live="polite">
      {lines.map((line, i) => (
        <li key={`${line.step}-${i}`} className={`launch-steps__step${line.current ? ' launch-steps__step--current' : ''}`} data-step={line.step}>
          <span className="launch-steps__label">{line.current ? `${line.label}…` : line.label}</span>{' '}
          <span className="launch-steps__time">{line.duration}</span>
        </li>
      ))}
    </ol>
  );
}

function StreamLabel({ stream }: { stream: Stream }) {
  return <span className={`stream-label stream-label--${stream.state}`}>{streamLabel(stream)}</span>;
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
