import { useState, type ReactNode } from 'react';
import { errorMessage } from '../api/http';
import { Modal } from './Modal';
import { Spinner } from './Spinner';

interface Props {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  /** Does the step. While it runs the dialog waits; if it throws, the dialog stays and says why. */
  onConfirm: () => Promise<void>;
  onCancel: () => void;
}

/** A destructive step asks first; Cancel has the focus so Enter does no harm. */
export function ConfirmDialog({ title, children, confirmLabel, onConfirm, onCancel }: Props) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title={title} onClose={onCancel} busy={busy} size="sm" testId="confirm-dialog">
      <div className="modal__body">
        <div className="modal__text">{children}</div>
        {error && (
          <p className="form-error" role="alert" data-testid="confirm-error">
            {error}
          </p>
        )}
      </div>
      <div className="modal__foot">
        <button type="button" className="btn btn--secondary" onClick={onCancel} disabled={busy} data-autofocus data-testid="confirm-cancel">
          Cancel
        </button>
        <button type="button" className="btn btn--danger" onClick={() => void confirm()} disabled={busy} data-testid="confirm-accept">
          {busy && <Spinner size="sm" />} {confirmLabel}
        </button>
      </div>
    </Modal>
  );
}
