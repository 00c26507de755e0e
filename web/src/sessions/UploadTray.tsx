import type { UploadItem } from '../hooks/useUploads';
import { CloseIcon } from '../ui/icons';
import { formatSize } from './filePaths';

/** Uploads under way and their outcome, in a corner of the desktop. */
export function UploadTray({ items, onDismiss, onClear }: { items: UploadItem[]; onDismiss: (key: number) => void; onClear: () => void }) {
  if (items.length === 0) return null;
  const finished = items.some((item) => item.state === 'done' || item.state === 'failed');
  return (
    <div className="uploads" role="status" data-testid="uploads">
      <ul className="uploads__list">
        {items.map((item) => (
          <li key={item.key} className={`uploads__item uploads__item--${item.state}`} data-testid="upload-item" data-state={item.state}>
            <div className="uploads__line">
              <span className="uploads__name" title={item.path}>
                {item.name}
              </span>
              <span className="uploads__state">
                {item.state === 'waiting' && 'waiting'}
                {item.state === 'sending' && `${formatSize(item.sent)} of ${formatSize(item.total)}`}
                {item.state === 'done' && 'uploaded'}
                {item.state === 'failed' && 'failed'}
              </span>
              {(item.state === 'done' || item.state === 'failed') && (
                <button type="button" className="uploads__dismiss" onClick={() => onDismiss(item.key)} aria-label={`Dismiss ${item.name}`}>
                  <CloseIcon />
                </button>
              )}
            </div>
            {item.state === 'sending' && <progress className="uploads__bar" max={item.total || 1} value={item.sent} />}
            {item.error && (
              <p className="uploads__error" data-testid="upload-error">
                {item.error}
              </p>
            )}
          </li>
        ))}
      </ul>
      {finished && (
        <button type="button" className="uploads__clear" onClick={onClear}>
          Clear finished
        </button>
      )}
    </div>
  );
}
