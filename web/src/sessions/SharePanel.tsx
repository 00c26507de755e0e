import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { SHARE_LINK_MINUTES_DEFAULT, SHARE_LINK_MINUTES_MAX, SHARE_LINK_MINUTES_MIN, type SessionSharesPage, type ShareMode } from '../contract';
import { errorMessage } from '../api/http';
import { formatAbsolute } from '../ui/format';
import { Spinner } from '../ui/Spinner';
import { createShareLink, listShares, revokeShare, shareLinkAddress, shareWithUser } from './ShareApi';

interface Props {
  sessionId: string;
  /** Bumped when the session changed (someone started or stopped watching), so the list reloads. */
  refreshKey: string;
}

const MODE_LABELS: Record<ShareMode, string> = { view: 'View only', control: 'Control' };

/** Who this session is shared with and who is watching; share with a person or a link, revoke. */
export function SharePanel({ sessionId, refreshKey }: Props) {
  const [page, setPage] = useState<SessionSharesPage | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);
  const [user, setUser] = useState('');
  const [userMode, setUserMode] = useState<ShareMode>('view');
  const [linkMode, setLinkMode] = useState<ShareMode>('view');
  const [minutes, setMinutes] = useState(String(SHARE_LINK_MINUTES_DEFAULT));
  const [busy, setBusy] = useState(false);
  const [link, setLink] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    listShares(sessionId, controller.signal)
      .then((next) => {
        setPage(next);
        setProblem(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setProblem(errorMessage(err));
      });
    return () => controller.abort();
  }, [sessionId, refreshKey, reloads]);

  const act = useCallback(async (step: () => Promise<void>) => {
    setBusy(true);
    setProblem(null);
    try {
      await step();
      setReloads((n) => n + 1);
    } catch (err) {
      setProblem(errorMessage(err));
    } finally {
      setBusy(false);
    }
  }, []);

  const addUser = (e: FormEvent) => {
    e.preventDefault();
    void act(async () => {
      await shareWithUser(sessionId, user.trim(), userMode);
      setUser('');
    });
  };

  const addLink = (e: FormEvent) => {
    e.preventDefault();
    void act(async () => {
      const created = await createShareLink(sessionId, linkMode, Number(minutes));
      setLink(created.url ? shareLinkAddress(created.url) : null);
    });
  };

  return (
    <div className="drawer__body" data-testid="share-panel">
      <form className="drawer__section" onSubmit={addUser}>
        <h3 className="drawer__heading">Share with a person</h3>
        <div className="drawer__row">
          <input
            className="drawer__text share__input"
            value={user}
            onChange={(e) => setUser(e.target.value)}
            placeholder="Username"
            aria-label="Username"
            autoComplete="off"
            data-testid="share-user"
          />
          <ModeSelect value={userMode} onChange={setUserMode} testId="share-user-mode" />
          <button type="submit" className="btn btn--primary" disabled={busy || user.trim() === ''} data-testid="share-user-add">
            Share
          </button>
        </div>
      </form>
      <form className="drawer__section" onSubmit={addLink}>
        <h3 className="drawer__heading">Share a link</h3>
        <p className="drawer__hint">Anyone signed in to Sortie who opens it before it expires can watch (or control).</p>
        <div className="drawer__row">
          <ModeSelect value={linkMode} onChange={setLinkMode} testId="share-link-mode" />
          <label className="drawer__hint">
            expires after{' '}
            <input
              className="drawer__text share__minutes"
              type="number"
              min={SHARE_LINK_MINUTES_MIN}
              max={SHARE_LINK_MINUTES_MAX}
              value={minutes}
              onChange={(e) => setMinutes(e.target.value)}
              data-testid="share-link-minutes"
            />{' '}
            minutes
          </label>
          <button type="submit" className="btn btn--dark" disabled={busy} data-testid="share-link-add">
            Create link
          </button>
        </div>
        {link && (
          <>
            <p className="drawer__hint">Copy it now: Sortie keeps no copy of the link and cannot show it again.</p>
            <input className="drawer__text" readOnly value={link} onFocus={(e) => e.target.select()} data-testid="share-link-url" />
          </>
        )}
      </form>
      {problem && (
        <p className="drawer__error" role="alert" data-testid="share-error">
          {problem}
        </p>
      )}
      <section className="drawer__section">
        <h3 className="drawer__heading">Shared with</h3>
        {page === null && !problem && <Spinner size="sm" label="Loading shares" />}
        {page && page.shares.length === 0 && <p className="drawer__hint">Nobody yet.</p>}
        {page && page.shares.length > 0 && (
          <ul className="files__list" data-testid="share-list">
            {page.shares.map((share) => (
              <li key={share.id} className="files__entry" data-testid={`share-${share.user?.username ?? 'link'}`}>
                <span className="files__name">
                  {share.user ? share.user.username : 'Link'} · {MODE_LABELS[share.mode]}
                  {share.watching && <span className="drawer__ok"> · watching now</span>}
                  {share.expires_at && (
                    <span className="files__meta" title={formatAbsolute(share.expires_at)}>
                      {' '}
                      until {new Date(share.expires_at).toLocaleTimeString()}
                    </span>
                  )}
                </span>
                <button
                  type="button"
                  className="btn btn--small btn--danger-outline"
                  disabled={busy}
                  onClick={() => void act(() => revokeShare(sessionId, share.id))}
                  data-testid={`share-revoke-${share.user?.username ?? share.id}`}
                >
                  Revoke
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
      {page && page.watchers.length > 0 && (
        <section className="drawer__section">
          <h3 className="drawer__heading">Watching now</h3>
          <p className="drawer__hint" data-testid="share-watchers">
            {page.watchers.map((w) => `${w.username}${w.via === 'admin' ? ' (admin)' : ''}${w.mode === 'control' ? ', with control' : ''}`).join(' · ')}
          </p>
        </section>
      )}
    </div>
  );
}

function ModeSelect({ value, onChange, testId }: { value: ShareMode; onChange: (mode: ShareMode) => void; testId: string }) {
  return (
    <select className="viewer__select" value={value} onChange={(e) => onChange(e.target.value === 'control' ? 'control' : 'view')} aria-label="What they may do" data-testid={testId}>
      <option value="view">{MODE_LABELS.view}</option>
      <option value="control">{MODE_LABELS.control}</option>
    </select>
  );
}
