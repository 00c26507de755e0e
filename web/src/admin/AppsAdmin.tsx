import { useMemo, useState } from 'react';
import { listApps } from '../catalog/catalogApi';
import type { App } from '../contract';
import { AppIcon } from '../ui/AppIcon';
import { ConfirmDialog } from '../ui/ConfirmDialog';
import { ErrorBanner } from '../ui/ErrorBanner';
import { PlusIcon } from '../ui/icons';
import { Loading } from '../ui/Loading';
import { Table } from '../ui/Table';
import { deleteApp } from './adminApi';
import { AdminPage } from './AdminPage';
import { AppForm } from './AppForm';
import { useLoader } from '../hooks/useLoader';
import { VisibilityBadge } from './VisibilityBadge';

type Editing = { app: App | null } | null;

export function AppsAdmin() {
  const apps = useLoader((signal) => listApps(signal));
  const [editing, setEditing] = useState<Editing>(null);
  const [deleting, setDeleting] = useState<App | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const sorted = useMemo(() => [...(apps.data ?? [])].sort((a, b) => a.name.localeCompare(b.name)), [apps.data]);
  const categories = useMemo(
    () => [...new Set((apps.data ?? []).map((a) => a.category).filter(Boolean))].sort((a, b) => a.localeCompare(b)),
    [apps.data],
  );

  const onSaved = (saved: App) => {
    const isNew = editing?.app === null;
    apps.setData((list) => {
      const rest = (list ?? []).filter((a) => a.id !== saved.id);
      return [...rest, saved];
    });
    setEditing(null);
    setNotice(isNew ? `Added ${saved.name}.` : `Saved ${saved.name}.`);
  };

  const confirmDelete = async (app: App) => {
    await deleteApp(app.id);
    apps.setData((list) => list?.filter((a) => a.id !== app.id) ?? list);
    setNotice(`Deleted ${app.name}.`);
    setDeleting(null);
  };

  return (
    <AdminPage
      section="apps"
      title="Apps"
      description="Everything in the catalog, including what only some people can see."
      tools={
        <button type="button" className="btn btn--primary" onClick={() => { setNotice(null); setEditing({ app: null }); }} data-testid="admin-app-new">
          <PlusIcon /> New app
        </button>
      }
      notice={notice}
    >
      <ErrorBanner
        message={apps.error && `Could not load the apps: ${apps.error}`}
        onDismiss={apps.clearError}
        action={{ label: 'Retry', onClick: apps.reload }}
      />

      {apps.data === null && !apps.error && <Loading what="apps" />}

      {apps.data !== null && sorted.length === 0 && (
        <div className="empty">
          <h3 className="empty__title">No apps yet</h3>
          <p className="empty__text">Add the first app and it shows up in the catalog for the people who may launch it.</p>
        </div>
      )}

      {sorted.length > 0 && (
        <Table look="data-table" columns={['App', 'Category', 'Who can launch', 'Kind']}>
          {sorted.map((app) => (
            <tr key={app.id} data-testid={`admin-app-row-${app.id}`}>
              <th scope="row" className="data-table__primary">
                <div className="identity">
                  <AppIcon name={app.name} src={app.icon} />
                  <div className="identity__text">
                    <span className="identity__name">{app.name}</span>
                    <code className="identity__sub">{app.id}</code>
                  </div>
                </div>
              </th>
              <td data-label="Category">{app.category || <span className="muted">—</span>}</td>
              <td data-label="Who can launch">
                <VisibilityBadge visibility={app.visibility} />
              </td>
              <td data-label="Kind" className="data-table__detail">
                <div className="data-table__stack">
                  {app.launch_type === 'url' ? 'Web link' : 'Container'}
                  <span className="data-table__mono" title={app.launch_type === 'url' ? app.url : app.container_image}>
                    {app.launch_type === 'url' ? app.url : app.container_image || formatCommandShort(app.command)}
                  </span>
                </div>
              </td>
              <td className="data-table__actions">
                <button
                  type="button"
                  className="btn btn--small btn--secondary"
                  onClick={() => { setNotice(null); setEditing({ app }); }}
                  data-testid={`admin-app-edit-${app.id}`}
                  aria-label={`Edit ${app.name}`}
                >
                  Edit
                </button>
                <button
                  type="button"
                  className="btn btn--small btn--danger-outline"
                  onClick={() => { setNotice(null); setDeleting(app); }}
                  data-testid={`admin-app-delete-${app.id}`}
                  aria-label={`Delete ${app.name}`}
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </Table>
      )}

      {editing && <AppForm app={editing.app} categories={categories} onSaved={onSaved} onCancel={() => setEditing(null)} />}

      {deleting && (
        <ConfirmDialog
          title={`Delete ${deleting.name}?`}
          confirmLabel="Delete app"
          onConfirm={() => confirmDelete(deleting)}
          onCancel={() => setDeleting(null)}
        >
          <p>
            <strong>{deleting.name}</strong> (<code>{deleting.id}</code>) disappears from the catalog for everyone. This cannot be undone.
          </p>
        </ConfirmDialog>
      )}
    </AdminPage>
  );
}

function formatCommandShort(command: string[] | undefined): string {
  return command?.join(' ') ?? '';
}
