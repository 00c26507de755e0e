import { CloseIcon } from './icons';

interface Props {
  message: string | null;
  onDismiss: () => void;
  action?: { label: string; onClick: () => void };
}

export function ErrorBanner({ message, onDismiss, action }: Props) {
  if (!message) return null;
  return (
    <div className="banner banner--error" role="alert" data-testid="error-banner">
      <svg className="banner__icon" viewBox="0 0 20 20" aria-hidden="true">
        <path
          fill="currentColor"
          d="M10 1.5a8.5 8.5 0 1 0 0 17 8.5 8.5 0 0 0 0-17Zm0 4a1 1 0 0 1 1 1v4a1 1 0 1 1-2 0v-4a1 1 0 0 1 1-1Zm0 7.25a1.25 1.25 0 1 1 0 2.5 1.25 1.25 0 0 1 0-2.5Z"
        />
      </svg>
      <p className="banner__message">{message}</p>
      {action && (
        <button type="button" className="btn btn--small btn--ghost" onClick={action.onClick}>
          {action.label}
        </button>
      )}
      <button type="button" className="banner__close" onClick={onDismiss} aria-label="Dismiss error">
        <CloseIcon />
      </button>
    </div>
  );
}
