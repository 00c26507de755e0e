/**
 * WebSocket close codes Sortie uses when it cannot relay a stream. They live in the
 * 4000-4999 private range and mirror the HTTP status a person would expect, so the UI
 * (and anyone reading a browser's network panel) can tell what happened.
 */
export const CloseCode = {
  /** Not signed in, or the sign-in expired. */
  Unauthorized: 4401,
  /** The page opening the stream is not on an allowed origin. */
  Forbidden: 4403,
  /** No session with that id (or not one of the caller's). */
  SessionNotFound: 4404,
  /** The session exists but is still starting; try again once it is running. */
  SessionNotRunning: 4409,
  /** The session has ended (failed or terminated). */
  SessionEnded: 4410,
  /** The session is running but its stream could not be reached. */
  StreamUnavailable: 4502,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];
