import type { SessionStatus } from '../contract';

interface Props {
  status: SessionStatus;
  /** Put on the text node's element so its textContent is exactly the status. */
  testId?: string;
}

export function StatusBadge({ status, testId }: Props) {
  return (
    <span className={`status status--${status}`}>
      <span className="status__dot" aria-hidden="true" />
      <span className="status__text" data-testid={testId}>
        {status}
      </span>
    </span>
  );
}
