import { useCurrentUser } from '../auth/AuthContext';
import { paths, type AdminSection } from '../hooks/useHashRoute';
import { AppsAdmin } from './AppsAdmin';
import { AuditAdmin } from './AuditAdmin';
import { RecordingsAdmin } from './RecordingsAdmin';
import { SessionsAdmin } from './SessionsAdmin';
import { UsersAdmin } from './UsersAdmin';
import './admin.css';

const sections: { id: AdminSection; label: string }[] = [
  { id: 'apps', label: 'Apps' },
  { id: 'users', label: 'Users' },
  { id: 'sessions', label: 'Sessions' },
  { id: 'audit', label: 'Audit' },
  { id: 'recordings', label: 'Recordings' },
];

export function AdminArea({ section }: { section: AdminSection }) {
  const { isAdmin } = useCurrentUser();

  if (!isAdmin) {
    return (
      <div className="page">
        <div className="empty" data-testid="admin-forbidden">
          <h1 className="empty__title">You need to be an administrator</h1>
          <p className="empty__text">This part of Sortie is for administrators. Ask one if you need something changed.</p>
          <a className="btn btn--primary" href={paths.catalog}>
            Back to catalog
          </a>
        </div>
      </div>
    );
  }

  return (
    <div className="page">
      <div className="admin-head">
        <h1 className="page__title">Administration</h1>
        <nav className="tabs" aria-label="Administration">
          {sections.map((s) => (
            <a
              key={s.id}
              className="tabs__link"
              href={paths.admin(s.id)}
              aria-current={section === s.id ? 'page' : undefined}
              data-testid={`admin-nav-${s.id}`}
            >
              {s.label}
            </a>
          ))}
        </nav>
      </div>
      {section === 'apps' && <AppsAdmin />}
      {section === 'users' && <UsersAdmin />}
      {section === 'sessions' && <SessionsAdmin />}
      {section === 'audit' && <AuditAdmin />}
      {section === 'recordings' && <RecordingsAdmin />}
    </div>
  );
}
