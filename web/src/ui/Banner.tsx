import type { ReactNode } from 'react';
import { CloseIcon } from './icons';

type Tone = 'error' | 'warning';

interface Props {
  /** `error`: a dismissible alert above what it is about; `warning`: a standing strip across the page. */
  tone: Tone;
  children: ReactNode;
  action?: { label: string; onClick: () => void };
  onDismiss?: () => void;
  testId?: string;
}

const roles: Record<Tone, string> = { error: 'alert', warning: 'note' };

const iconPaths: Record<Tone, string> = {
  error:
    'M10 1.5a8.5 8.5 0 1 0 0 17 8.5 8.5 0 0 0 0-17Zm0 4a1 1 0 0 1 1 1v4a1 1 0 1 1-2 0v-4a1 1 0 0 1 1-1Zm0 7.25a1.25 1.25 0 1 1 0 2.5 1.25 1.25 0 0 1 0-2.5Z',
  warning:
    'M8.6 2.8a1.6 1.6 0 0 1 2.8 0l6.9 12.1A1.6 1.6 0 0 1 16.9 17H3.1a1.6 1.6 0 0 1-1.4-2.1zM10 7a1 1 0 0 0-1 1v3.5a1 1 0 1 0 2 0V8a1 1 0 0 0-1-1Zm0 6.5a1.1 1.1 0 1 0 0 2.2 1.1 1.1 0 0 0 0-2.2Z',
};

export function Banner({ tone, children, action, onDismiss, testId }: Props) {
  return (
    <div className={`banner banner--${tone}`} role={roles[tone]} data-testid={testId}>
      <svg className="banner__icon" viewBox="0 0 20 20" aria-hidden="true">
        <path fill="currentColor" d={iconPaths[tone]} />
      </svg>
      <p className="banner__message">{children}</p>
      {action && (
        <button type="button" className="btn btn--small btn--ghost" onClick={action.onClick}>
          {action.label}
        </button>
      )}
      {onDismiss && (
        <button type="button" className="banner__close" onClick={onDismiss} aria-label={`Dismiss ${tone}`}>
          <CloseIcon />
        </button>
      )}
    </div>
  );
}
