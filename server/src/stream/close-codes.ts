/**
 * WebSocket close codes Sortie uses when it cannot relay a stream, or stops relaying one.
 * They live in the 4000-4999 private range and mirror the HTTP status a person would expect,
 * so the UI (and anyone reading a browser's network panel) can tell what happened. The web
 * viewer has a message for each (web/src/components/Viewer.tsx); a test keeps them in step.
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
  /** The viewer sent more during the VNC handshake than the handshake can need. */
  HandshakeTooLarge: 4413,
  /** The session already has as many viewers as SORTIE_MAX_VIEWERS_PER_SESSION allows. */
  TooManyViewers: 4429,
  /** The session is running but its stream could not be reached. */
  StreamUnavailable: 4502,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];
