/**
 * Sharing a live session: with another user by username, or with a link that expires. A
 * `view` share streams the desktop with every input dropped by the relay; `control` lets the
 * holder type and point as the owner does.
 */
export const SHARE_MODES = ['view', 'control'] as const;
export type ShareMode = (typeof SHARE_MODES)[number];

/** How long a link may stay valid, in minutes: from one minute to one week. */
export const SHARE_LINK_MINUTES_MIN = 1;
export const SHARE_LINK_MINUTES_MAX = 7 * 24 * 60;
export const SHARE_LINK_MINUTES_DEFAULT = 60;

/** A share as the owner (or an admin) sees it in GET /api/sessions/{id}/shares. */
export interface SessionShare {
  id: string;
  /** `user`: shared with `user`; `link`: anyone signed in who opens the link gains a share of its own. */
  kind: 'user' | 'link';
  mode: ShareMode;
  /** The user it is shared with; null for a link. */
  user: { id: string; username: string } | null;
  /** The link this share was redeemed from, for a user share that came from one. */
  link_id: string | null;
  created_at: string;
  /** When a link (and what was redeemed from it) stops working; null for a user share. */
  expires_at: string | null;
  /** Whether the holder has a stream of the session open now. */
  watching: boolean;
}

/** POST /api/sessions/{id}/shares answers a new link with its address, shown this once only. */
export interface CreatedShare extends SessionShare {
  /** The link's secret; Sortie keeps only its hash, so it cannot be shown again. */
  token?: string;
  /** Where a signed-in person opens the link: `/#/share/{token}`. */
  url?: string;
}

/** Someone with a stream of another person's session open now. */
export interface SessionWatcher {
  username: string;
  mode: ShareMode;
  /** `share`: a share holder; `admin`: an admin watching (or, with `control`, having taken control). */
  via: 'share' | 'admin';
  opened_at: string;
}

export interface SessionSharesPage {
  shares: SessionShare[];
  /** Everyone other than the owner watching now, on any Sortie replica. */
  watchers: SessionWatcher[];
}

/** On a session shared with the caller: whose it is and what the share allows. */
export interface SharedWithMe {
  owner: string;
  mode: ShareMode;
}

/** POST /api/shares/redeem answers with the session the link opens. */
export interface RedeemedShare {
  session_id: string;
  mode: ShareMode;
}
