/**
 * What the viewer makes of a stream that ended: the words it shows, and whether it
 * reconnects by itself. Pure, so the rules are tested without a browser.
 */
import { CLOSE_CODE_MESSAGES, FINAL_CLOSE_CODES, isCloseCode, type Session } from '../contract';

export interface StreamEnd {
  /** True when the VNC handshake had completed before the stream ended. */
  wasConnected: boolean;
  /** WebSocket close code; Sortie uses 44xx/45xx codes to say why it refused or closed the stream. */
  code: number | null;
  /** Human-readable cause when one is known (close reason, auth problem), else empty. */
  reason: string;
}

/** The stream's state as the viewer shows it. */
export type Stream =
  | { state: 'connecting' }
  | { state: 'connected' }
  | { state: 'retrying'; attempt: number; message: string }
  | { state: 'lost'; message: string; everConnected: boolean };

/** Delays before each automatic reconnect; after these run out the person decides. */
export const RETRY_DELAYS_MS: readonly number[] = [1000, 3000];

/** The relay's own words first, then the contract's sentence for the code, then a plain fallback. */
export function describeStreamEnd(end: StreamEnd): string {
  if (end.reason) return end.reason;
  if (end.code !== null && isCloseCode(end.code)) return CLOSE_CODE_MESSAGES[end.code];
  return end.wasConnected ? 'The connection to the desktop was lost.' : 'Could not connect to the desktop.';
}

export type AfterEnd = { retry: true; attempt: number; delayMs: number } | { retry: false };

/**
 * Whether to reconnect by itself after `retriesSoFar` automatic retries. A close that
 * retrying cannot fix (signed out, not allowed, no such session, ended, too many viewers)
 * goes straight to the person, as does one past the retry budget.
 */
export function afterStreamEnd(end: StreamEnd, retriesSoFar: number): AfterEnd {
  if (end.code !== null && FINAL_CLOSE_CODES.has(end.code)) return { retry: false };
  const delayMs = RETRY_DELAYS_MS[retriesSoFar];
  if (delayMs === undefined) return { retry: false };
  return { retry: true, attempt: retriesSoFar + 1, delayMs };
}

/** The short label beside the status badge while the session runs. */
export function streamLabel(stream: Stream): string {
  return {
    connecting: 'Connecting…',
    connected: 'Connected',
    retrying: 'Reconnecting…',
    lost: 'Disconnected',
  }[stream.state];
}

/** How often to re-read the session: fast while it boots, slowly once it only needs watching. */
export function pollInterval(session: Pick<Session, 'status'> | null, gone: boolean): number | null {
  if (gone) return null;
  if (!session || session.status === 'creating') return 500;
  if (session.status === 'queued') return 1000;
  if (session.status === 'running') return 5000;
  return null;
}
