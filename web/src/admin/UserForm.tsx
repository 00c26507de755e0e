import { useId, useState, type FormEvent } from 'react';
import { ApiError, errorMessage } from '../api/http';
import type { Role, User } from '../auth/types';
import { DialogFooter } from '../ui/DialogFooter';
import { Field } from '../ui/Field';
import { Modal } from '../ui/Modal';
import { MIN_PASSWORD_LENGTH } from '../contract';
import { createUser } from './adminApi';
import { PasswordInput } from './PasswordInput';

interface Props {
  onSaved: (user: User) => void;
  onCancel: () => void;
}

type Errors = Partial<Record<'username' | 'password', string>>;

export function UserForm({ onSaved, onCancel }: Props) {
  const uid = useId();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [role, setRole] = useState<Role>('user');
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  // One problem is said once, next to the button; two get a word each by their fields.
  const both = Boolean(errors.username && errors.password);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (saving) return;
    const found: Errors = {};
    if (!username.trim()) found.username = 'Choose a username.';
    if (password.length < MIN_PASSWORD_LENGTH) found.password = `Use at least ${MIN_PASSWORD_LENGTH} characters.`;
    setErrors(found);
    if (found.username && found.password) {
      setFormError('Fix the 2 highlighted fields.');
      return;
    }
    if (found.username || found.password) {
      setFormError(found.username ?? found.password ?? null);
      return;
    }
    setSaving(true);
    setFormError(null);
    try {
      const user = await createUser({ username: username.trim(), password, role, ...(displayName.trim() ? { display_name: displayName.trim() } : {}) });
      onSaved(user);
    } catch (err) {
      setSaving(false);
      if (err instanceof ApiError && err.status === 409) {
        setErrors({ username: 'Taken' });
        setFormError(err.fromServer ? err.message : `There is already a user called “${username.trim()}”.`);
      } else {
        setFormError(errorMessage(err));
      }
    }
  };

  return (
    <Modal title="New user" onClose={onCancel} busy={saving} testId="user-form">
      <form className="modal__form" onSubmit={submit} noValidate>
        <div className="modal__body">
          <div className="form-grid">
            <Field id={`${uid}-username`} label="Username" hint="What they type to sign in." error={both ? errors.username : undefined}>
              <input
                id={`${uid}-username`}
                className="input"
                value={username}
                onChange={(e) => setUsername(e.target.value)}
                aria-invalid={errors.username ? true : undefined}
                autoCapitalize="none"
                autoComplete="off"
                spellCheck={false}
                data-testid="user-form-username"
              />
            </Field>
            <Field id={`${uid}-display_name`} label="Display name" hint="Optional; shown in the header.">
              <input
                id={`${uid}-display_name`}
                className="input"
                value={displayName}
                onChange={(e) => setDisplayName(e.target.value)}
                autoComplete="off"
                data-testid="user-form-display_name"
              />
            </Field>
            <Field id={`${uid}-password`} label="Password" hint={`At least ${MIN_PASSWORD_LENGTH} characters. Share it with them safely.`} error={both ? errors.password : undefined}>
              <PasswordInput
                id={`${uid}-password`}
                value={password}
                onChange={setPassword}
                invalid={Boolean(errors.password)}
                testId="user-form-password"
              />
            </Field>
            <Field id={`${uid}-role`} label="Role" hint={role === 'admin' ? 'Can launch every app and manage Sortie.' : 'Launches the apps they may use.'}>
              <select id={`${uid}-role`} className="input select" value={role} onChange={(e) => setRole(e.target.value as Role)} data-testid="user-form-role">
                <option value="user">User</option>
                <option value="admin">Administrator</option>
              </select>
            </Field>
          </div>
        </div>
        <DialogFooter
          error={formError}
          errorTestId="user-form-error"
          saving={saving}
          saveLabel="Add user"
          saveTestId="user-form-save"
          onCancel={onCancel}
        />
      </form>
    </Modal>
  );
}
