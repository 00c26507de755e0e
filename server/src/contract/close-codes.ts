/**
 * WebSocket close codes Sortie uses when it cannot relay a stream, or stops relaying one.
 * They live in the 4000-4999 private range and mirror the HTTP status a person would expect,
 * so the UI (and anyone reading a browser's network panel) can tell what happened.
 */
export const CloseCode = {
  /** The viewer did not speak the VNC (RFB) handshake Sortie leads it through. */
  HandshakeFailed: 4400,
  /** Not signed in, or the sign-in expired. */
  Unauthorized: 4401,
  /** The page opening the stream is not on an allowed origin. */
  Forbidden: 4403,
  /** No session with that id (or not one of the caller's). */
  SessionNotFound: 4404,
  /**
   * The viewer stopped reading the stream: too much of it waited in Sortie, or none was read
   * for too long. Reconnecting starts afresh.
   */
  ViewerTooSlow: 4408,
  /** The session exists but is still starting; try again once it is running. */
  SessionNotRunning: 4409,
  /** The session has ended (failed or terminated). */
  SessionEnded: 4410,
  /** The viewer's share of the session was revoked, expired, or ended with the session. */
  ShareEnded: 4411,
  /** The viewer sent more during the VNC handshake than the handshake can need. */
  HandshakeTooLarge: 4413,
  /**
   * A view-only viewer sent something the relay cannot check (an unknown VNC message, an
   * oversize one, a text frame), so it closed the stream rather than pass it on unchecked.
   */
  UncheckedInput: 4415,
  /** The session already has as many viewers as SORTIE_MAX_VIEWERS_PER_SESSION allows. */
  TooManyViewers: 4429,
  /** The session is running but its stream could not be reached. */
  StreamUnavailable: 4502,
  /**
   * This Sortie is shutting down (SIGTERM: a rolling update, a drained node) and takes no new
   * streams; connecting again reaches another replica.
   */
  Draining: 4503,
  /**
   * This Sortie is shutting down and closed the stream for it; the session is untouched, and
   * the viewer reconnects at once (through another replica).
   */
  ReconnectNow: 4307,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Each code phrased for a person; the viewer shows it when the relay sent no reason. Keyed by
 * the code's value so a new code does not compile until it has its sentence.
 */
export const CLOSE_CODE_MESSAGES: Readonly<Record<CloseCodeValue, string>> = {
  4400: 'The viewer and the desktop could not agree on how to start the stream.',
  4401: 'Your sign-in has expired. Sign in again to see the desktop.',
  4403: 'This page is not allowed to open the desktop stream. Open Sortie from its own address.',
  4404: 'Sortie does not know this session.',
  4408: 'The connection stopped keeping up with the desktop, so Sortie closed it. Reconnect to carry on.',
  4409: 'The session is not ready for a connection yet.',
  4410: 'The session has ended.',
  4411: 'Your share of this session was revoked or has expired.',
  4413: 'The viewer sent more than the desktop stream accepts while connecting.',
  4415: 'The viewer sent something a view-only stream does not pass on, so Sortie closed it.',
  4429: 'This session is already open in as many windows as allowed. Close one and reconnect.',
  4502: 'The desktop stream is unavailable.',
  4503: 'This Sortie server is shutting down and takes no new streams; connecting again reaches another.',
  4307: 'Sortie is restarting; the viewer reconnects to the same desktop at once.',
};

/**
 * Codes after which the viewer reconnects at once: the session is fine, only the Sortie
 * relaying it is going away, and the next connection reaches another one.
 */
export const RECONNECT_NOW_CLOSE_CODES: ReadonlySet<number> = new Set<CloseCodeValue>([CloseCode.ReconnectNow, CloseCode.Draining]);

/**
 * Codes that the same request, sent again, meets again: a viewer should not reconnect by
 * itself after one of these, only when the person asks (after signing in, closing a window…).
 */
export const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set<CloseCodeValue>([
  CloseCode.Unauthorized,
  CloseCode.Forbidden,
  CloseCode.SessionNotFound,
  CloseCode.SessionEnded,
  CloseCode.HandshakeTooLarge,
  CloseCode.ShareEnded,
  CloseCode.UncheckedInput,
  CloseCode.TooManyViewers,
]);

export function isCloseCode(code: number): code is CloseCodeValue {
  return Object.prototype.hasOwnProperty.call(CLOSE_CODE_MESSAGES, code);
}
