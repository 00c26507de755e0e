/**
 * What the viewer makes of a stream that ended: the words it shows, and whether it
 * reconnects by itself. Pure, so the rules are tested without a browser.
 */
import { CLOSE_CODE_MESSAGES, FINAL_CLOSE_CODES, isCloseCode, RECONNECT_NOW_CLOSE_CODES, type Session } from '../contract';

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
  /** `again`: a reconnect the viewer made by itself, shown small over the last picture. */
  | { state: 'connecting'; again?: boolean }
  | { state: 'connected' }
  /** `of`: automatic tries in all; `quiet`: Sortie asked for it (a restart), nothing went wrong. */
  | { state: 'retrying'; attempt: number; of: number; message: string; quiet: boolean }
  | { state: 'lost'; message: string; everConnected: boolean };

/** Delays before each automatic reconnect; after these run out the person decides. */
export const RETRY_DELAYS_MS: readonly number[] = [1000, 3000];
/**
 * After 4307 or 4503 (the Sortie relaying the stream is shutting down): at once, then briefly
 * again in case the next connection meets a Sortie going away too (a rolling update).
 */
export const RECONNECT_NOW_DELAYS_MS: readonly number[] = [0, 100, 250, 500, 1000, 2000];
/**
 * After a connection dropped without a close frame (1006: the relaying Sortie crashed, or the
 * network blinked) while the session still runs: soon, then backing off.
 */
export const DROPPED_DELAYS_MS: readonly number[] = [250, 1000, 2000, 4000];

/** The delays of the automatic reconnects after `end`, by what its close code says. */
export function retryDelays(end: Pick<StreamEnd, 'code'>): readonly number[] {
  if (end.code !== null && RECONNECT_NOW_CLOSE_CODES.has(end.code)) return RECONNECT_NOW_DELAYS_MS;
  if (end.code === 1006) return DROPPED_DELAYS_MS;
  return RETRY_DELAYS_MS;
}

/** The relay's own words first, then the contract's sentence for the code, then a plain fallback. */
export function describeStreamEnd(end: StreamEnd): string {
  if (end.reason) return end.reason;
  if (end.code !== null && isCloseCode(end.code)) return CLOSE_CODE_MESSAGES[end.code];
  return end.wasConnected ? 'The connection to the desktop was lost.' : 'Could not connect to the desktop.';
}

export type AfterEnd = { retry: true; attempt: number; of: number; delayMs: number; quiet: boolean } | { retry: false };

/**
 * Whether to reconnect by itself after `retriesSoFar` automatic retries. A close that
 * retrying cannot fix (signed out, not allowed, no such session, ended, too many viewers)
 * goes straight to the person, as does one past the retry budget.
 */
export function afterStreamEnd(end: StreamEnd, retriesSoFar: number): AfterEnd {
  if (end.code !== null && FINAL_CLOSE_CODES.has(end.code)) return { retry: false };
  const delays = retryDelays(end);
  const delayMs = delays[retriesSoFar];
  if (delayMs === undefined) return { retry: false };
  const quiet = end.code !== null && RECONNECT_NOW_CLOSE_CODES.has(end.code);
  return { retry: true, attempt: retriesSoFar + 1, of: delays.length, delayMs, quiet };
}

/**
 * Whether the viewer reconnects without first re-reading the session. Sortie closed the
 * stream to hand it to another replica (4307, 4503): the session runs, only its relay went
 * away, so the read happens alongside the new connection instead of before it, and the
 * person waits for one connection, not a request and then a connection. Any other end may
 * mean the session itself ended, which the read finds out first.
 */
export function reconnectsBeforeRecheck(next: AfterEnd): boolean {
  return next.retry && next.quiet && next.delayMs === 0;
}

/** The short label beside the status badge while the session runs. */
export function streamLabel(stream: Stream): string {
  if (stream.state === 'connecting' && stream.again) return 'Reconnecting…';
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
