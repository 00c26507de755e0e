import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import type { SessionService } from '../sessions/session-service.js';
import { CloseCode } from './close-codes.js';
import type { StreamTarget } from './relay.js';
import type { SessionStatus } from '../contract/sessions.js';

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
    const shares = sessions.shares;
    if (!found) {
      // Not the caller's (nor an admin's): a share holder's, or "not found" like a missing one.
      const shared = shares ? await shares.sharedStream(caller, id) : undefined;
      if (!shared) return { ok: false, code: CloseCode.SessionNotFound, reason: `No session with id "${id}"` };
      const { grant, session } = shared;
      if (!shared.endpoint) return notStreaming(session.status, null);
      return {
        ok: true,
        endpoint: shared.endpoint,
        viewer: caller,
        ...(shared.secret ? { secret: shared.secret } : {}),
        viewOnly: grant.mode === 'view',
        onOpen: shares!.watch(session, caller, 'share', grant.mode, grant.share.expires_at),
      };
    }
    const { session, endpoint, secret } = found;
    // With sign-in off there is one anonymous admin and nobody to watch; `loginId` is absent then.
    if (endpoint && shares && session.user_id !== caller.userId && caller.loginId !== undefined) {
      // An admin watching someone's session: view only, unless they take control explicitly (audited).
      const control = new URL(req.url ?? '/', 'http://sortie').searchParams.get('control') === '1';
      return {
        ok: true,
        endpoint,
        viewer: caller,
        ...(secret ? { secret } : {}),
        viewOnly: !control,
        asAdmin: true,
        onOpen: shares.watch(session, caller, 'admin', control ? 'control' : 'view'),
      };
    }
    // Someone else's session here means an admin's view of it (without shares to watch through).
    if (endpoint) return { ok: true, endpoint, viewer: caller, ...(secret ? { secret } : {}), asAdmin: session.user_id !== caller.userId };
    return notStreaming(session.status, session.queue_position);
  };
}

/** Why a session that is not running has no stream to give. */
function notStreaming(status: SessionStatus, queuePosition: number | null): StreamTarget {
  if (status === 'creating') return { ok: false, code: CloseCode.SessionNotRunning, reason: 'The session is still starting' };
  if (status === 'queued') return { ok: false, code: CloseCode.SessionNotRunning, reason: `The session is queued (place ${queuePosition ?? '?'})` };
  return { ok: false, code: CloseCode.SessionEnded, reason: `The session has ${status === 'failed' ? 'failed' : 'ended'}` };
}
