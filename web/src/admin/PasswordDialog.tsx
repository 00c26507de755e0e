import { useId, useState, type FormEvent } from 'react';
import { errorMessage } from '../api/http';
import { displayName, type User } from '../auth/types';
import { DialogFooter } from '../ui/DialogFooter';
import { Field } from '../ui/Field';
import { Modal } from '../ui/Modal';
import { MIN_PASSWORD_LENGTH } from '../contract';
import { updateUser } from './adminApi';
import { PasswordInput } from './PasswordInput';

interface Props {
  user: User;
  onSaved: (user: User) => void;
  onCancel: () => void;
}

export function PasswordDialog({ user, onSaved, onCancel }: Props) {
  const uid = useId();
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (saving) return;
    if (password.length < MIN_PASSWORD_LENGTH) {
      setError(`Use at least ${MIN_PASSWORD_LENGTH} characters.`);
      return;
    }
    setSaving(true);
    setError(null);
    try {
      onSaved(await updateUser(user.id, { password }));
    } catch (err) {
      setSaving(false);
      setError(errorMessage(err));
    }
  };

  return (
    <Modal title={`New password for ${displayName(user)}`} onClose={onCancel} busy={saving} size="sm" testId="reset-password-dialog">
      <form className="modal__form" onSubmit={submit} noValidate>
        <div className="modal__body">
          <Field id={`${uid}-password`} label="New password" hint={`At least ${MIN_PASSWORD_LENGTH} characters.`}>
            <PasswordInput id={`${uid}-password`} value={password} onChange={setPassword} invalid={Boolean(error)} testId="reset-password-input" />
          </Field>
        </div>
        <DialogFooter
          error={error}
          errorTestId="reset-password-error"
          saving={saving}
          saveLabel="Set password"
          saveTestId="reset-password-save"
          onCancel={onCancel}
        />
      </form>
    </Modal>
  );
}
