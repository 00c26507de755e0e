import { useEffect, useRef, useState, type FormEvent } from 'react';
import { errorMessage } from '../api/http';
import { request } from '../api/request';
import { AUDIT_ACTION_GROUPS, AUDIT_ACTIONS, type AuditAction, type AuditEvent } from '../contract';
import { ErrorBanner } from '../ui/ErrorBanner';
import { Loading } from '../ui/Loading';
import { AdminPage } from './AdminPage';
import { auditCsvUrl, fetchAuditPage, NO_FILTER, type AuditFilter } from './auditApi';
import './audit.css';

const ACTION_LABELS: Record<AuditAction, string> = {
  'auth.sign_in': 'Signed in',
  'auth.sign_in_failed': 'Sign-in failed',
  'auth.sign_out': 'Signed out',
  'session.launch': 'Launched a session',
  'session.end': 'Session ended',
  'session.stream_open': 'Opened a stream',
  'session.stream_close': 'Closed a stream',
  'session.share_create': 'Shared a session',
  'session.share_redeem': 'Opened a share link',
  'session.share_revoke': 'Revoked a share',
  'session.share_end': 'A share ended with its session',
  'session.watch_open': "Started watching someone's session",
  'session.watch_close': "Stopped watching someone's session",
  'session.take_control': 'Took control of a session',
  'app.create': 'Created an app',
  'app.update': 'Changed an app',
  'app.delete': 'Deleted an app',
  'catalog.load': 'Loaded the catalog file',
  'user.create': 'Created a user',
  'user.update': 'Changed a user',
  'user.password': 'Set a password',
  'user.disable': 'Disabled a user',
  'user.enable': 'Enabled a user',
  'user.delete': 'Deleted a user',
  'user.approvals': 'Changed approvals',
  'user.home_delete': 'Deleted a home',
  'recording.start': 'Started recording a session',
  'recording.stop': 'Stopped recording a session',
  'recording.play': 'Played a recording',
  'recording.download': 'Downloaded a recording',
  'recording.delete': 'Deleted a recording',
};

const GROUP_LABELS: Record<(typeof AUDIT_ACTION_GROUPS)[number], { name: string; all: string }> = {
  auth: { name: 'Sign-ins', all: 'Every sign-in event' },
  session: { name: 'Sessions', all: 'Every session event' },
  app: { name: 'Apps', all: 'Every app change' },
  catalog: { name: 'Catalog file', all: 'Every catalog load' },
  user: { name: 'Users', all: 'Every user change' },
  recording: { name: 'Recordings', all: 'Every recording event' },
};

/** To the second: the order of events close together matters here. */
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** The form's fields: times as the browser's datetime-local inputs hold them (local time). */
type Draft = AuditFilter;

/** A local `datetime-local` value as ISO-8601, or null when it is not a time. */
function toIso(local: string): string | null {
  if (!local) return '';
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

export function AuditAdmin() {
  const [draft, setDraft] = useState<Draft>(NO_FILTER);
  const [filter, setFilter] = useState<AuditFilter>(NO_FILTER);
  const [nonce, setNonce] = useState(0);
  const [list, setList] = useState<{ events: AuditEvent[]; next: string | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  // Answers for a filter no longer shown are dropped.
  const shown = useRef(filter);
  shown.current = filter;

  useEffect(() => {
    const controller = new AbortController();
    setList(null);
    fetchAuditPage(filter, null, controller.signal)
      .then((page) => {
        setList({ events: page.events, next: page.next_cursor });
        setError(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(errorMessage(err));
      });
    return () => controller.abort();
  }, [filter, nonce]);

  const loadMore = () => {
    if (!list?.next || loadingMore) return;
    const asked = filter;
    setLoadingMore(true);
    fetchAuditPage(filter, list.next)
      .then((page) => {
        if (asked !== shown.current) return;
        setList((current) => current && { events: [...current.events, ...page.events], next: page.next_cursor });
      })
      .catch((err: unknown) => setError(errorMessage(err)))
      .finally(() => setLoadingMore(false));
  };

  const apply = (event: FormEvent) => {
    event.preventDefault();
    const from = toIso(draft.from);
    const to = toIso(draft.to);
    if (from === null || to === null) return setError('The time range needs a date and a time in each field you fill in');
    setError(null);
    setFilter({ actor: draft.actor.trim(), action: draft.action, from, to });
  };

  const clear = () => {
    setDraft(NO_FILTER);
    setFilter(NO_FILTER);
  };

  const exportCsv = async () => {
    try {
      // A download cannot refresh an expired sign-in on its own; an API call first does.
      await request('GET', '/api/auth/me');
      window.location.assign(auditCsvUrl(filter));
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  const filtered = filter !== NO_FILTER && Object.values(filter).some(Boolean);

  return (
    <AdminPage
      section="audit"
      title="Audit log"
      description="Who did what, when and from where: sign-ins, sessions, apps and users. Newest first."
      tools={
        <div className="admin-toolbar__filters">
          <button type="button" className="btn btn--secondary" onClick={() => setNonce((n) => n + 1)} data-testid="admin-audit-refresh">
            Refresh
          </button>
          <button type="button" className="btn btn--secondary" onClick={() => void exportCsv()} data-testid="admin-audit-export">
            Export CSV
          </button>
        </div>
      }
    >
      <form className="audit-filters" onSubmit={apply} data-testid="admin-audit-filters">
        <label className="audit-filters__field">
          <span>User</span>
          <input
            className="input"
            value={draft.actor}
            onChange={(e) => setDraft({ ...draft, actor: e.target.value })}
            placeholder="Username or id"
            maxLength={200}
            data-testid="admin-audit-user"
          />
        </label>
        <label className="audit-filters__field">
          <span>Action</span>
          <select className="input select" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })} data-testid="admin-audit-action">
            <option value="">All actions</option>
            {AUDIT_ACTION_GROUPS.map((group) => (
              <optgroup key={group} label={GROUP_LABELS[group].name}>
                <option value={`${group}.*`}>{GROUP_LABELS[group].all}</option>
                {AUDIT_ACTIONS.filter((action) => action.startsWith(`${group}.`)).map((action) => (
                  <option key={action} value={action}>
                    {ACTION_LABELS[action]}
                  </option>
                ))}
              </optgroup>
            ))}
          </select>
        </label>
        <label className="audit-filters__field">
          <span>From</span>
          <input type="datetime-local" className="input" value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.target.value })} data-testid="admin-audit-from" />
        </label>
        <label className="audit-filters__field">
          <span>Until</span>
          <input type="datetime-local" className="input" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.target.value })} data-testid="admin-audit-to" />
        </label>
        <div className="audit-filters__buttons">
          <button type="submit" className="btn btn--primary" data-testid="admin-audit-apply">
            Apply
          </button>
          <button type="button" className="btn btn--ghost" onClick={clear} disabled={!filtered && draft === NO_FILTER}>
            Clear
          </button>
        </div>
      </form>

      <ErrorBanner message={error} onDismiss={() => setError(null)} />

      {list === null && !error && <Loading what="the audit log" />}

      {list !== null && list.events.length === 0 && (
        <div className="empty" data-testid="admin-audit-empty">
          <h3 className="empty__title">No events</h3>
          <p className="empty__text">{filtered ? 'Nothing matches these filters.' : 'Nothing has been recorded yet.'}</p>
        </div>
      )}

      {list !== null && list.events.length > 0 && (
        <>
          <div className="table-wrap">
            <table className="table data-table audit-table">
              <thead>
                <tr>
                  {['When', 'Who', 'What', 'Target', 'From', 'Details'].map((column) => (
                    <th key={column} scope="col">
                      {column}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {list.events.map((event) => (
                  <AuditRow key={event.id} event={event} />
                ))}
              </tbody>
            </table>
          </div>
          {list.next && (
            <div className="show-more">
              <button type="button" className="btn btn--secondary" onClick={loadMore} disabled={loadingMore} data-testid="admin-audit-more">
                {loadingMore ? 'Loading…' : 'Show older events'}
              </button>
            </div>
          )}
        </>
      )}
    </AdminPage>
  );
}

function AuditRow({ event }: { event: AuditEvent }) {
  return (
    <tr data-testid="admin-audit-row" data-action={event.action}>
      <td className="data-table__time" title={event.at}>
        {timeFormat.format(new Date(event.at))}
      </td>
      <td>
        <span className="user-cell">
          {event.actor_type === 'system' ? <span className="tag">System</span> : event.actor_name || '—'}
          {event.actor_type === 'unknown' && <span className="user-cell__sub">no such account</span>}
        </span>
      </td>
      <td>
        <span className="user-cell">
          {ACTION_LABELS[event.action] ?? event.action}
          <span className="user-cell__sub audit-table__code">{event.action}</span>
        </span>
      </td>
      <td className="data-table__detail">
        {event.target_id ? (
          <span className="user-cell">
            {event.target_name ?? event.target_type}
            <code className="data-table__mono" title={event.target_id}>
              {event.target_id}
            </code>
          </span>
        ) : (
          '—'
        )}
      </td>
      <td>
        <code className="audit-table__address">{event.address ?? '—'}</code>
      </td>
      <td className="data-table__reason audit-table__details">{describeDetails(event.details)}</td>
    </tr>
  );
}

/** The details as "key: value" pairs, in the order the server wrote them. */
function describeDetails(details: Record<string, unknown>): string {
  const parts = Object.entries(details)
    .filter(([, value]) => value !== null && value !== undefined && !(Array.isArray(value) && value.length === 0))
    .map(([key, value]) => `${key.replaceAll('_', ' ')}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return parts.length > 0 ? parts.join(' · ') : '—';
}
