import type { ReactNode } from 'react';
import { isActive, type Session } from '../contract';
import { formatAbsolute, formatRelative } from '../ui/format';
import { paths } from '../hooks/useHashRoute';
import { useNow } from '../hooks/useNow';
import { StatusBadge } from './StatusBadge';
import { Table, type TableLook } from '../ui/Table';

interface Props {
  sessions: readonly Session[];
  /**
   * `sessions` for a person's own list, `data-table` in the admin area. Cells take the
   * look's classes (`sessions__time`, `data-table__time`…); the admin look also labels
   * its cards with `data-label` on phones.
   */
  look: TableLook;
  /** Admin view: who owns each session, in a User column after the app. */
  owner?: (session: Session) => ReactNode;
  onEnd: (session: Session) => void;
  /** Sessions whose End is under way: their button waits and says so. */
  ending?: ReadonlySet<string>;
  /** Test id prefixes; each is followed by the session id. */
  testIds: { row: string; open: string; end: string };
}

const noneEnding: ReadonlySet<string> = new Set();

/** Sessions in the order given, with Open and End for the live ones (queued, creating or running). */
export function SessionTable({ sessions, look, owner, onEnd, ending = noneEnding, testIds }: Props) {
  const now = useNow(15000);
  const cell = (name: string) => `${look}__${name}`;
  const columns = owner ? ['App', 'User', 'Status', 'Started', 'Details'] : ['App', 'Status', 'Started', 'Details'];

  return (
    <Table look={look} columns={columns}>
      {sessions.map((s) => (
        <tr key={s.id} data-testid={`${testIds.row}${s.id}`}>
          <th scope="row" className={cell('app')}>
            {s.app_name || s.app_id}
            {s.shared_with_me && (
              <span className="muted" data-testid={`shared-by-${s.id}`}>
                {' '}
                — shared by {s.shared_with_me.owner}
                {s.shared_with_me.mode === 'view' ? ' (view only)' : ''}
              </span>
            )}
          </th>
          {owner && <td data-label="User">{owner(s)}</td>}
          <td data-label="Status" className={cell('status')}>
            <StatusBadge status={s.status} />
            {s.status === 'queued' && s.queue_position !== null && (
              <span className="muted" data-testid={`queue-place-${s.id}`}>
                {' '}
                — place {s.queue_position}
              </span>
            )}
          </td>
          <td data-label="Started" className={cell('time')}>
            <time dateTime={s.created_at} title={formatAbsolute(s.created_at)}>
              {formatRelative(s.created_at, now)}
            </time>
          </td>
          <td data-label="Details" className={s.reason ? cell('reason') : `${cell('reason')} ${cell('reason--none')}`}>
            {s.reason ?? <span className="muted">—</span>}
          </td>
          <td className={cell('actions')}>
            {isActive(s.status) && (
              <>
                {/* Nobody streams a pooled session before a launch claims it (the relay refuses). */}
                {!s.pooled && (
                  <a className="btn btn--small btn--secondary" href={paths.viewer(s.id)} data-testid={`${testIds.open}${s.id}`} aria-label={`Open ${s.app_name}`}>
                    Open
                  </a>
                )}
                {!s.shared_with_me && (
                <button
                  type="button"
                  className="btn btn--small btn--danger-outline"
                  onClick={() => onEnd(s)}
                  disabled={ending.has(s.id)}
                  data-testid={`${testIds.end}${s.id}`}
                  aria-label={`End ${s.app_name}`}
                >
                  {ending.has(s.id) ? 'Ending…' : 'End'}
                </button>
                )}
              </>
            )}
          </td>
        </tr>
      ))}
    </Table>
  );
}
