import { useMemo, useState, type ReactNode } from 'react';
import { errorMessage } from '../api/http';
import { listApps } from '../catalog/catalogApi';
import type { App } from '../contract';
import { displayName, type User } from '../auth/types';
import { DialogFooter } from '../ui/DialogFooter';
import { Modal } from '../ui/Modal';
import { Loading } from '../ui/Loading';
import { getApprovals, putApprovals, type Approvals } from './adminApi';
import { useLoader } from '../hooks/useLoader';

interface Props {
  user: User;
  onSaved: (approvals: Approvals) => void;
  onCancel: () => void;
}

interface Loaded {
  apps: App[];
  approvals: Approvals;
}

/** Which "approved" apps a person may launch: one by one, or every such app in a category. */
export function ApprovalsDialog({ user, onSaved, onCancel }: Props) {
  const loaded = useLoader<Loaded>(async (signal) => {
    const [apps, approvals] = await Promise.all([listApps(signal), getApprovals(user.id, signal)]);
    return { apps, approvals };
  });

  return (
    <Modal title={`Approvals for ${displayName(user)}`} onClose={onCancel} testId="approvals-dialog">
      {loaded.data ? (
        <ApprovalsForm user={user} apps={loaded.data.apps} initial={loaded.data.approvals} onSaved={onSaved} onCancel={onCancel} />
      ) : (
        <div className="modal__body">
          {loaded.error ? (
            <p className="form-error" role="alert" data-testid="approvals-error">
              Could not load the approvals: {loaded.error}{' '}
              <button type="button" className="link-button" onClick={loaded.reload}>
                Retry
              </button>
            </p>
          ) : (
            <Loading what="approvals" compact />
          )}
        </div>
      )}
    </Modal>
  );
}

interface FormProps {
  user: User;
  apps: App[];
  initial: Approvals;
  onSaved: (approvals: Approvals) => void;
  onCancel: () => void;
}

function ApprovalsForm({ user, apps, initial, onSaved, onCancel }: FormProps) {
  const [appIds, setAppIds] = useState<ReadonlySet<string>>(() => new Set(initial.app_ids));
  const [categories, setCategories] = useState<ReadonlySet<string>>(() => new Set(initial.categories));
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const approvalApps = useMemo(() => apps.filter((a) => a.visibility === 'approved').sort((a, b) => a.name.localeCompare(b.name)), [apps]);

  // Approvals may name apps or categories that no longer need approval (or no longer exist);
  // they stay listed so they can be seen and removed.
  const strayAppIds = initial.app_ids.filter((id) => !approvalApps.some((a) => a.id === id));
  const categoryRows = useMemo(() => {
    const counts = new Map<string, number>();
    for (const app of apps) if (app.category) counts.set(app.category, (counts.get(app.category) ?? 0) + (app.visibility === 'approved' ? 1 : 0));
    for (const name of initial.categories) if (!counts.has(name)) counts.set(name, 0);
    return [...counts].sort(([a], [b]) => a.localeCompare(b));
  }, [apps, initial.categories]);

  const toggle = (set: ReadonlySet<string>, value: string, on: boolean) => {
    const next = new Set(set);
    if (on) next.add(value);
    else next.delete(value);
    return next;
  };

  const coveredByCategory = (app: App) => categories.has(app.category);

  const save = async () => {
    setSaving(true);
    setError(null);
    try {
      onSaved(await putApprovals(user.id, { app_ids: [...appIds].sort(), categories: [...categories].sort() }));
    } catch (err) {
      setSaving(false);
      setError(errorMessage(err));
    }
  };

  return (
    <>
      <div className="modal__body">
        {user.role === 'admin' && (
          <p className="notice notice--info">
            {displayName(user)} is an administrator and can launch every app anyway. These approvals matter only if that changes.
          </p>
        )}
        <fieldset className="form-section">
          <legend className="form-section__title">Apps that need approval</legend>
          {approvalApps.length === 0 && strayAppIds.length === 0 ? (
            <p className="form-section__hint">No app is set to “Approved people” yet.</p>
          ) : (
            <ul className="checklist">
              {approvalApps.map((app) => (
                <CheckItem
                  key={app.id}
                  label={app.name}
                  meta={
                    <>
                      {app.category || 'No category'}
                      {coveredByCategory(app) && !appIds.has(app.id) && ' · allowed through its category'}
                    </>
                  }
                  checked={appIds.has(app.id)}
                  onChange={(on) => setAppIds((s) => toggle(s, app.id, on))}
                  testId={`approval-app-${app.id}`}
                />
              ))}
              {strayAppIds.map((id) => (
                <CheckItem
                  key={id}
                  label={<code>{id}</code>}
                  meta="Not an approval app (any more)"
                  checked={appIds.has(id)}
                  onChange={(on) => setAppIds((s) => toggle(s, id, on))}
                  testId={`approval-app-${id}`}
                />
              ))}
            </ul>
          )}
        </fieldset>
        <fieldset className="form-section">
          <legend className="form-section__title">Whole categories</legend>
          <p className="form-section__hint">Every approval app in a ticked category, including ones added later.</p>
          {categoryRows.length === 0 ? (
            <p className="form-section__hint">There are no categories yet.</p>
          ) : (
            <ul className="checklist checklist--columns">
              {categoryRows.map(([name, count]) => (
                <CheckItem
                  key={name}
                  label={name}
                  meta={count === 0 ? 'No approval apps now' : `${count} approval ${count === 1 ? 'app' : 'apps'}`}
                  checked={categories.has(name)}
                  onChange={(on) => setCategories((s) => toggle(s, name, on))}
                  testId={`approval-category-${name}`}
                />
              ))}
            </ul>
          )}
        </fieldset>
      </div>
      <DialogFooter
        error={error}
        errorTestId="approvals-error"
        saving={saving}
        saveLabel="Save approvals"
        saveTestId="approvals-save"
        onSave={save}
        onCancel={onCancel}
      />
    </>
  );
}

interface CheckItemProps {
  label: ReactNode;
  /** Smaller, under the label. */
  meta: ReactNode;
  checked: boolean;
  onChange: (checked: boolean) => void;
  testId: string;
}

function CheckItem({ label, meta, checked, onChange, testId }: CheckItemProps) {
  return (
    <li>
      <label className="check">
        <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} data-testid={testId} />
        <span className="check__label">
          {label}
          <span className="check__meta">{meta}</span>
        </span>
      </label>
    </li>
  );
}
