import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, errorMessage } from '../api/http';
import { request } from '../api/request';
import { withAuth } from '../auth/refresh';
import { displayName } from '../auth/types';
import type { Recording, RecordingPage } from '../contract';
import { useLoader } from '../hooks/useLoader';
import { RecordingPlayer } from '../sessions/playback';
import { SEEK_STEP_MS, seekSlider } from '../sessions/seekSlider';
import { ErrorBanner } from '../ui/ErrorBanner';
import { Loading } from '../ui/Loading';
import { listAllUsers } from './adminApi';
import { AdminPage } from './AdminPage';

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function length(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

const contentUrl = (id: string, download = false) => `/api/admin/recordings/${encodeURIComponent(id)}/content${download ? '?download=1' : ''}`;

/** The admin area's Recordings tab: who, which app, when, how long, how big; play, download, delete. */
export function RecordingsAdmin() {
  const [recordings, setRecordings] = useState<Recording[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [playing, setPlaying] = useState<Recording | null>(null);
  // Every user, for names in place of ids: far fewer than recordings.
  const users = useLoader((signal) => listAllUsers(signal));
  const nameOf = useMemo(() => {
    const byId = new Map((users.data ?? []).map((u) => [u.id, u]));
    return (id: string) => {
      const user = byId.get(id);
      return user ? displayName(user) : id;
    };
  }, [users.data]);

  const load = useCallback(async (cursor: string | null) => {
    try {
      const page = await request<RecordingPage>('GET', `/api/admin/recordings?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      setRecordings((before) => [...(cursor ? (before ?? []) : []), ...page.recordings]);
      setNext(page.next_cursor);
      setError(null);
    } catch (err) {
      setError(errorMessage(err));
    }
  }, []);

  useEffect(() => {
    void load(null);
  }, [load]);

  const remove = async (recording: Recording) => {
    if (!window.confirm(`Delete the recording of ${recording.app_name} by ${nameOf(recording.user_id)} from ${timeFormat.format(new Date(recording.started_at))}? This cannot be undone.`)) return;
    try {
      await request('DELETE', `/api/admin/recordings/${encodeURIComponent(recording.id)}`);
      if (playing?.id === recording.id) setPlaying(null);
      setNotice(`Deleted the recording of ${recording.app_name}.`);
      await load(null);
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  return (
    <AdminPage
      section="recordings"
      title="Recordings"
      description="Sessions of apps that record, newest first. Only administrators see these; they are removed after the retention period."
      tools={null}
      notice={notice}
    >
      {error && <ErrorBanner message={error} onDismiss={() => setError(null)} />}
      {playing && <PlayerPanel key={playing.id} recording={playing} user={nameOf(playing.user_id)} onClose={() => setPlaying(null)} />}
      {recordings === null ? (
        <Loading what="recordings" />
      ) : recordings.length === 0 ? (
        <p className="admin-toolbar__text" data-testid="recordings-empty">
          No recordings. Set an app&apos;s recording to &quot;Every session&quot; or &quot;When the person launching asks&quot; to record its sessions.
        </p>
      ) : (
        <table className="table" data-testid="recordings-table">
          <thead>
            <tr>
              <th>User</th>
              <th>App</th>
              <th>Started</th>
              <th>Length</th>
              <th>Size</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {recordings.map((r) => (
              <tr key={r.id} data-testid="recording-row" data-recording-id={r.id}>
                <td data-testid="recording-user" title={r.user_id}>
                  {nameOf(r.user_id)}
                </td>
                <td data-testid="recording-app">{r.app_name}</td>
                <td data-testid="recording-started">
                  {timeFormat.format(new Date(r.started_at))}
                  {r.ended_at === null && ' (recording)'}
                </td>
                <td title={r.incomplete ?? undefined} data-testid="recording-length">
                  {length(r.duration_ms)}
                  {r.incomplete && ' (incomplete)'}
                </td>
                <td data-testid="recording-size">{size(r.size_bytes)}</td>
                <td className="table__actions">
                  <button type="button" className="btn" onClick={() => setPlaying(r)} data-testid="recording-play">
                    Play
                  </button>
                  <a className="btn" href={contentUrl(r.id, true)} download data-testid="recording-download">
                    Download
                  </a>
                  <button type="button" className="btn btn--danger" onClick={() => void remove(r)} data-testid="recording-delete">
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && (
        <button type="button" className="btn" onClick={() => void load(next)}>
          Load more
        </button>
      )}
    </AdminPage>
  );
}

/** Fetches a recording and plays it in noVNC, with play, pause and a seek bar. */
function PlayerPanel({ recording, user, onClose }: { recording: Recording; user: string; onClose: () => void }) {
  const screen = useRef<HTMLDivElement>(null);
  const player = useRef<RecordingPlayer | null>(null);
  const [time, setTime] = useState(0);
  const [duration, setDuration] = useState(0);
  const [isPlaying, setIsPlaying] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let disposed = false;
    void (async () => {
      try {
        const res = await withAuth(async () => {
          const r = await fetch(contentUrl(recording.id), { credentials: 'same-origin' });
          if (r.status === 401) throw new ApiError('You are not signed in, or your sign-in has expired.', 401, null);
          return r;
        });
        if (!res.ok) throw new Error(`The recording could not be fetched (${res.status}).`);
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (disposed || !screen.current) return;
        const p = new RecordingPlayer(bytes, screen.current, { onTime: setTime, onEnd: () => setIsPlaying(false) });
        player.current = p;
        setDuration(p.duration);
      } catch (err) {
        if (!disposed) setError(errorMessage(err));
      }
    })();
    return () => {
      disposed = true;
      player.current?.dispose();
      player.current = null;
    };
  }, [recording.id]);

  const slider = seekSlider(time, duration);

  const toggle = () => {
    const p = player.current;
    if (!p) return;
    if (p.isPlaying) p.pause();
    else p.play();
    setIsPlaying(p.isPlaying);
  };

  return (
    <section className="recording-player" aria-label={`Recording of ${recording.app_name}`} data-testid="recording-player">
      <div className="admin-toolbar">
        <p className="admin-toolbar__text">
          {recording.app_name}, {user}, {timeFormat.format(new Date(recording.started_at))}
          {recording.incomplete && ` (incomplete: ${recording.incomplete})`}
        </p>
        <button type="button" className="btn" onClick={onClose}>
          Close
        </button>
      </div>
      {error && <ErrorBanner message={error} onDismiss={() => setError(null)} />}
      <div ref={screen} style={{ width: '100%', height: '60vh', background: '#111' }} data-testid="recording-screen" />
      <div style={{ display: 'flex', gap: '0.75rem', alignItems: 'center', marginTop: '0.5rem' }}>
        <button type="button" className="btn btn--primary" onClick={toggle} data-testid="recording-toggle" disabled={!duration}>
          {isPlaying ? 'Pause' : 'Play'}
        </button>
        <input
          type="range"
          min={0}
          max={slider.max}
          step={SEEK_STEP_MS}
          value={slider.value}
          onChange={(e) => player.current?.seek(Number(e.target.value))}
          style={{ flex: 1 }}
          aria-label="Position"
          aria-valuetext={`${length(time)} of ${length(duration)}`}
          data-testid="recording-seek"
        />
        <span data-testid="recording-time" data-ms={Math.round(Math.min(time, duration))}>
          {length(time)} / {length(duration)}
        </span>
      </div>
    </section>
  );
}
