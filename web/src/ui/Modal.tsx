import { useId, useLayoutEffect, useRef, type ReactNode } from 'react';
import { CloseIcon } from './icons';

interface Props {
  title: string;
  /** Escape and the close button call this; ignored while `busy`. */
  onClose: () => void;
  busy?: boolean;
  size?: 'sm' | 'md' | 'lg';
  testId?: string;
  children: ReactNode;
}

/**
 * A native modal <dialog>: the browser traps focus, makes the page inert and gives focus
 * back to whatever opened it. Focus lands on `[data-autofocus]`, else the first field.
 */
export function Modal({ title, onClose, busy = false, size = 'md', testId, children }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();

  // Layout effect: its cleanup runs before React removes the node, so close() can restore focus.
  useLayoutEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (!dialog.open) dialog.showModal();
    const target =
      dialog.querySelector<HTMLElement>('[data-autofocus]') ??
      dialog.querySelector<HTMLElement>('.modal__body :is(input, select, textarea):not([disabled])');
    target?.focus();
    return () => {
      if (dialog.open) dialog.close();
    };
  }, []);

  return (
    <dialog
      ref={ref}
      className={`modal modal--${size}`}
      aria-labelledby={titleId}
      data-testid={testId}
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onClose();
      }}
    >
      <div className="modal__head">
        <h2 className="modal__title" id={titleId}>
          {title}
        </h2>
        <button type="button" className="modal__close" onClick={onClose} disabled={busy} aria-label="Close">
          <CloseIcon />
        </button>
      </div>
      {children}
    </dialog>
  );
}
