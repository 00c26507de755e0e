import type { App } from './app.js';
import type { Principal } from '../auth/principal.js';

export interface Approvals {
  app_ids: string[];
  categories: string[];
}

/**
 * Who may see and launch an app: `public` every signed-in user, `approved` admins and users
 * approved for the app or its category, `admin_only` admins.
 */
export function mayUseApp(principal: Principal, approvals: Approvals, app: App): boolean {
  if (principal.role === 'admin') return true;
  switch (app.visibility) {
    case 'public':
      return true;
    case 'approved':
      return approvals.app_ids.includes(app.id) || approvals.categories.includes(app.category);
    case 'admin_only':
      return false;
  }
}
