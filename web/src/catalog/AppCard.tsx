import type { App } from '../contract';
import { AppIcon } from '../ui/AppIcon';
import { ExternalLinkIcon } from '../ui/icons';
import { Spinner } from '../ui/Spinner';

interface Props {
  app: App;
  launching: boolean;
  onLaunch: (app: App) => void;
  /** Admins see which apps are restricted; everyone else only sees what they may launch anyway. */
  showVisibility?: boolean;
}

const visibilityNote: Partial<Record<App['visibility'], string>> = {
  approved: 'By approval',
  admin_only: 'Admins only',
};

export function AppCard({ app, launching, onLaunch, showVisibility = false }: Props) {
  const note = showVisibility ? visibilityNote[app.visibility] : undefined;
  return (
    <article
      className={`app-card${launching ? ' app-card--busy' : ''}`}
      data-testid={`app-card-${app.id}`}
      aria-busy={launching || undefined}
    >
      <header className="app-card__head">
        <AppIcon name={app.name} src={app.icon} />
        <div className="app-card__titles">
          <h2 className="app-card__name">{app.name}</h2>
          <div className="app-card__meta">
            {app.category && <span className="chip chip--static">{app.category}</span>}
            {note && <span className="app-card__note">{note}</span>}
          </div>
        </div>
      </header>
      <p className="app-card__description">{app.description || 'No description provided.'}</p>
      <footer className="app-card__foot">
        <span className="app-card__kind">{app.launch_type === 'url' ? 'Web link' : 'Desktop app'}</span>
        {app.launch_type === 'url' ? (
          // A real link (not window.open) so middle-click, copy-link and screen readers behave.
          <a
            className="btn btn--secondary app-card__action"
            href={app.url}
            target="_blank"
            rel="noopener noreferrer"
            data-testid={`launch-${app.id}`}
            aria-label={`Open ${app.name} in a new tab`}
          >
            Open
            <ExternalLinkIcon />
          </a>
        ) : (
          <button
            type="button"
            className="btn btn--primary app-card__action"
            onClick={() => onLaunch(app)}
            disabled={launching}
            data-testid={`launch-${app.id}`}
            aria-label={launching ? `Starting ${app.name}` : `Launch ${app.name}`}
          >
            {launching ? (
              <>
                <Spinner size="sm" /> Starting…
              </>
            ) : (
              'Launch'
            )}
          </button>
        )}
      </footer>
    </article>
  );
}
