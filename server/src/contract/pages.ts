import type { Session } from './sessions.js';
import type { User } from './users.js';

/**
 * Lists page by `limit` and `cursor`. An answer holds at most `limit` items and
 * `next_cursor`, the opaque value that asks for the page after it (null on the last page).
 * A list asked for without `limit` answers its first PAGE_LIMIT_DEFAULT items.
 */
export const PAGE_LIMIT_DEFAULT = 50;
export const PAGE_LIMIT_MAX = 200;
/** No cursor Sortie hands out is longer; anything longer was not made by Sortie. */
export const CURSOR_MAX_LENGTH = 512;

export interface Page {
  /** Pass as `cursor` to get the next page; null when this page is the last. */
  next_cursor: string | null;
}

/** GET /api/sessions: newest first. */
export interface SessionPage extends Page {
  sessions: Session[];
}

/** GET /api/admin/users: by username. */
export interface UserPage extends Page {
  users: User[];
}
