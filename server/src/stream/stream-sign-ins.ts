import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import { CloseCode, type CloseCodeValue } from './close-codes.js';

/**
 * How often open desktop streams have their sign-ins checked: the live-updates heartbeat's
 * 25 s, so a stream outlives a sign-out on another replica no longer than an event stream does.
 */
export const SIGN_IN_CHECK_INTERVAL_MS = 25_000;

/** Sign-ins asked about at once, so many streams do not take every database connection. */
const LOOKUPS_AT_ONCE = 8;

const SIGNED_OUT_REASON = 'Your sign-in has ended; sign in again to see the desktop';
const NO_LONGER_ADMIN_REASON = 'You are no longer an administrator, so you cannot watch this session; sign in again';

/** An open stream as the relay lists it. */
export interface SignedInStream {
  viewer?: Principal;
  /** The viewer sees someone else's session because they are an admin (not through a share). */
  asAdmin: boolean;
  /** Closes it after the frame in flight, as draining does. */
  close(code: CloseCodeValue, reason: string): void;
}

export interface StreamSignInsOptions {
  /** The relay's open streams. */
  streams: () => SignedInStream[];
  /**
   * The sign-in's user if it is neither revoked nor expired and the user is enabled; undefined
   * if not. The same answer every request gets, so not the access token's expiry: a stream
   * outlives its access token while the sign-in holds (the browser refreshes tokens without
   * reopening streams).
   */
  signIn: (loginId: string) => Promise<{ userId: string; role: Principal['role'] } | undefined>;
  logger: Logger;
  intervalMs?: number;
}

/**
 * Ends desktop streams whose viewer's sign-in no longer allows them (signed out, ended by an
 * admin, the user disabled, an admin watching someone's session no longer an admin), with
 * 4401, which the viewer takes as final. A stream is authorised only as it opens; this keeps
 * asking afterwards. One timer for all streams asks about each distinct sign-in once; the
 * replica where the change was made also checks at once (checkNow), other replicas within
 * one interval. Streams without a sign-in (sign-in switched off) are never touched.
 */
export class StreamSignIns {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** A check was asked for while one ran: that one may have looked before the change. */
  private again = false;

  constructor(private readonly o: StreamSignInsOptions) {}

  start(): void {
    this.timer ??= setInterval(() => void this.checkNow(), this.o.intervalMs ?? SIGN_IN_CHECK_INTERVAL_MS).unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Checks now (a sign-in ended or a role changed here); resolves when done. Never rejects. */
  checkNow(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.check();
      } while (this.again);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async check(): Promise<void> {
    const streams = this.o.streams().filter((s) => s.viewer?.loginId !== undefined);
    if (streams.length === 0) return;
    const loginIds = [...new Set(streams.map((s) => s.viewer!.loginId!))];
    const found = new Map<string, { userId: string; role: Principal['role'] } | undefined>();
    try {
      for (let i = 0; i < loginIds.length; i += LOOKUPS_AT_ONCE) {
        const batch = loginIds.slice(i, i + LOOKUPS_AT_ONCE);
        const answers = await Promise.all(batch.map((id) => this.o.signIn(id)));
        batch.forEach((id, n) => found.set(id, answers[n]));
      }
    } catch (err) {
      // Not a verdict on anyone's sign-in: the next check asks again.
      this.o.logger.warn({ err: (err as Error).message, signIns: loginIds.length }, 'could not check the sign-ins of open streams; closing none');
      return;
    }
    for (const stream of streams) {
      const viewer = stream.viewer!;
      const now = found.get(viewer.loginId!);
      if (!now || now.userId !== viewer.userId) stream.close(CloseCode.Unauthorized, SIGNED_OUT_REASON);
      else if (stream.asAdmin && now.role !== 'admin') stream.close(CloseCode.Unauthorized, NO_LONGER_ADMIN_REASON);
    }
  }
}
