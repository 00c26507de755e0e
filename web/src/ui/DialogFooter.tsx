import type { ReactNode } from 'react';
import { Spinner } from './Spinner';

interface Props {
  /** Said above the buttons, for the person to fix before saving again. */
  error: string | null;
  errorTestId: string;
  saving: boolean;
  saveLabel: ReactNode;
  saveTestId: string;
  /** Without it, Save submits the form the footer sits in. */
  onSave?: () => void;
  onCancel: () => void;
  cancelTestId?: string;
}

/** The foot of a dialog that saves something: what went wrong, then Cancel and Save. */
export function DialogFooter({ error, errorTestId, saving, saveLabel, saveTestId, onSave, onCancel, cancelTestId }: Props) {
  return (
    <div className="modal__foot modal__foot--form">
      {error && (
        <p className="form-error modal__error" role="alert" data-testid={errorTestId}>
          {error}
        </p>
      )}
      <div className="modal__buttons">
        <button type="button" className="btn btn--secondary" onClick={onCancel} disabled={saving} data-testid={cancelTestId}>
          Cancel
        </button>
        <button type={onSave ? 'button' : 'submit'} className="btn btn--primary" onClick={onSave} disabled={saving} data-testid={saveTestId}>
          {saving && <Spinner size="sm" />} {saveLabel}
        </button>
      </div>
    </div>
  );
}
