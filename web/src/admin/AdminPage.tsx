import type { ReactNode } from 'react';
import type { AdminSection } from '../hooks/useHashRoute';

interface Props {
  section: AdminSection;
  title: string;
  description: string;
  /** Beside the title: a New button, or filters. */
  tools: ReactNode;
  /** What the last change did, e.g. "Deleted GIMP.". */
  notice?: string | null;
  children: ReactNode;
}

/** One admin tab: its title and tools, the last change's notice, then the page itself. */
export function AdminPage({ section, title, description, tools, notice, children }: Props) {
  const titleId = `admin-${section}-title`;
  return (
    <section aria-labelledby={titleId}>
      <div className="admin-toolbar">
        <div>
          <h2 className="admin-toolbar__title" id={titleId}>
            {title}
          </h2>
          <p className="admin-toolbar__text">{description}</p>
        </div>
        {tools}
      </div>
      {notice && (
        <p className="notice" role="status" data-testid="admin-notice">
          {notice}
        </p>
      )}
      {children}
    </section>
  );
}
