import type { Visibility } from '../contract';

const labels: Record<Visibility, string> = {
  public: 'Everyone',
  approved: 'Approved people',
  admin_only: 'Admins only',
};

export function VisibilityBadge({ visibility }: { visibility: Visibility }) {
  return <span className={`tag tag--${visibility}`}>{labels[visibility] ?? visibility}</span>;
}
