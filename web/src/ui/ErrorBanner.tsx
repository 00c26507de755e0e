import { Banner } from './Banner';

interface Props {
  message: string | null;
  onDismiss: () => void;
  action?: { label: string; onClick: () => void };
}

/** Says what went wrong, until dismissed; renders nothing without a message. */
export function ErrorBanner({ message, onDismiss, action }: Props) {
  if (!message) return null;
  return (
    <Banner tone="error" action={action} onDismiss={onDismiss} testId="error-banner">
      {message}
    </Banner>
  );
}
