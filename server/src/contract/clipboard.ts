/**
 * Which ways text may move between a person's clipboard and a session's, per app:
 * `both` (the default), `to_session` (paste into the app only), `from_session` (copy out of
 * the app only) or `none`. The session's VNC server enforces it, not only the viewer.
 */
export const CLIPBOARD_MODES = ['both', 'to_session', 'from_session', 'none'] as const;
export type Clipboard = (typeof CLIPBOARD_MODES)[number];

export const DEFAULT_CLIPBOARD: Clipboard = 'both';
