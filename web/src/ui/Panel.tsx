import type { ReactNode } from 'react';

interface PanelProps {
  tone: 'progress' | 'error' | 'neutral';
  title: string;
  icon?: ReactNode;
  compact?: boolean;
  children?: ReactNode;
}

/** A framed message in the middle of a page: progress, a failure, or a neutral outcome. */
export function Panel({ tone, title, icon, compact, children }: PanelProps) {
  return (
    <section className={`panel panel--${tone}${compact ? ' panel--compact' : ''}`} aria-live="polite">
      {icon ?? <PanelIcon tone={tone} />}
      <h2 className="panel__title">{title}</h2>
      {children}
    </section>
  );
}

function PanelIcon({ tone }: { tone: PanelProps['tone'] }) {
  if (tone === 'error') {
    return (
      <svg className="panel__icon panel__icon--error" viewBox="0 0 24 24" aria-hidden="true">
        <circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" strokeWidth="1.8" />
        <path d="M12 7v6" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
        <circle cx="12" cy="16.5" r="1.2" fill="currentColor" />
      </svg>
    );
  }
  return (
    <svg className="panel__icon" viewBox="0 0 24 24" aria-hidden="true">
      <rect x="3" y="4" width="18" height="13" rx="2" fill="none" stroke="currentColor" strokeWidth="1.8" />
      <path d="M8 21h8M12 17v4" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" />
    </svg>
  );
}
