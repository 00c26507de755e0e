import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import type { SessionService } from '../sessions/session-service.js';
import { CloseCode } from './close-codes.js';
import type { StreamTarget } from './relay.js';

/**
 * What a stream needs to know of its caller, answered by the same gate HTTP routes pass
 * (http/request-gate.ts): declared here so the stream layer does not reach up into HTTP.
 */
export interface CallerGate {
  /** Throws ForbiddenError for a foreign Host or Origin. */
  checkSource(headers: IncomingHttpHeaders, acts: boolean): void;
  /** Throws UnauthorizedError without a valid access token. */
  principal(headers: IncomingHttpHeaders): Promise<Principal>;
}

/**
 * Who may open a session's stream, and where it goes: the request gate that HTTP routes
 * pass, then the session API's own rule (your session, or any session for an admin; a
 * session you may not see is "not found", like a missing one).
 */
export function streamAccess(gate: CallerGate, sessions: SessionService): (sessionId: string, req: IncomingMessage) => Promise<StreamTarget> {
  return async (id, req) => {
    let caller;
    try {
      gate.checkSource(req.headers, true);
      caller = await gate.principal(req.headers);
    } catch (err) {
      if (err instanceof ForbiddenError) return { ok: false, code: CloseCode.Forbidden, reason: err.message };
      if (err instanceof UnauthorizedError) return { ok: false, code: CloseCode.Unauthorized, reason: err.message };
      throw err;
    }
    const found = await sessions.streamTarget(caller, id).catch(() => undefined);
    if (!found) return { ok: false, code: CloseCode.SessionNotFound, reason: `No session with id "${id}"` };
    const { session, endpoint, secret } = found;
    if (endpoint) return { ok: true, endpoint, viewer: caller, ...(secret ? { secret } : {}) };
    if (session.status === 'creating') return { ok: false, code: CloseCode.SessionNotRunning, reason: 'The session is still starting' };
    if (session.status === 'queued') {
      return { ok: false, code: CloseCode.SessionNotRunning, reason: `The session is queued (place ${session.queue_position ?? '?'})` };
    }
    return { ok: false, code: CloseCode.SessionEnded, reason: `The session has ${session.status === 'failed' ? 'failed' : 'ended'}` };
  };
}
