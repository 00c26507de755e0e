/** What `GET /api/events` says changed; `id` is absent when only the queue moved, or on a resync. */
export interface SessionEvent {
  id?: string;
  status?: string;
}

/** What a stream tells its owner: each named event, and each failure. */
export interface StreamHandlers {
  event(name: string, data: string): void;
  /** `closed`: the browser gave up on the stream (refused: 401, 429); otherwise it retries by itself. */
  error(closed: boolean): void;
}

/** Opens one event stream; `browserStream` is the real one, tests give their own. */
export type Connect = (url: string, handlers: StreamHandlers) => { close(): void };

export interface LiveEventsOptions {
  url: string;
  connect: Connect;
  /** Buys a new access token with the refresh cookie: true when it did, false when the sign-in is over; throws when the server cannot be reached. */
  refresh: () => Promise<boolean>;
  onEvent: (event: SessionEvent) => void;
  /** Whether announcements arrive; while they do not, callers poll as before. */
  onHealth: (healthy: boolean) => void;
}

/** How long to wait before trying again once the server refused the stream (over its limit, signed out). */
export const REOPEN_MS = 60_000;
/** How long to wait before trying again when the server could not be reached to refresh the sign-in. */
export const RETRY_MS = 5_000;

/** How long a refresh that lost to another tab's waits for the winner's cookie. */
export const RACE_MS = 1_000;

/** The named events a stream sends (see server/src/http/session-events.ts). */
const ANNOUNCEMENTS = ['session', 'queue', 'resync'];

/**
 * One page's live session announcements, across the streams it takes: the server ends each
 * stream when the access token it was opened with expires (`expired`), and the next one is
 * opened at once with a refreshed token, so announcements go on without a gap the person
 * could notice. A stream opened again may have missed changes meanwhile, so its `ready` is
 * told to the owner as a change of everything.
 *
 * A stream the server refused (`error` with `closed`) may have been opened with a token that
 * expired unseen (a laptop that slept through the `expired` event): the first refusal
 * refreshes and tries again at once, later ones wait REOPEN_MS. A refused refresh is tried
 * with a stream too: two tabs share the refresh cookie, and when their streams expire
 * together only the first refresh wins, while the other tab's cookie is renewed all the same. A stream the server ended
 * because the sign-in did (`revoked`) waits REOPEN_MS too; polling carries on meanwhile and
 * finds out that the person has to sign in again.
 */
export class LiveEvents {
  private source: { close(): void } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private streams = 0;
  private refusals = 0;

  constructor(private readonly o: LiveEventsOptions) {}

  start(): void {
    this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.source?.close();
    this.source = undefined;
  }

  private open(): void {
    if (this.stopped) return;
    const opened = ++this.streams;
    const current = () => opened === this.streams && !this.stopped;
    this.source = this.o.connect(this.o.url, {
      event: (name, data) => {
        if (!current()) return;
        if (name === 'ready') {
          this.refusals = 0;
          this.o.onHealth(true);
          if (opened > 1) this.o.onEvent({});
        } else if (ANNOUNCEMENTS.includes(name)) {
          this.o.onEvent(parse(data));
        } else if (name === 'expired') {
          // Healthy all along: the next stream is a refresh away.
          this.source?.close();
          this.renew();
        } else if (name === 'revoked') {
          this.source?.close();
          this.later(REOPEN_MS);
        }
      },
      error: (closed) => {
        if (!current()) return;
        this.o.onHealth(false);
        if (!closed) return;
        this.refusals++;
        if (this.refusals === 1) this.renew();
        else this.later(REOPEN_MS);
      },
    });
  }

  private renew(): void {
    this.o.refresh().then(
      (refreshed) => {
        if (refreshed) return this.open();
        // Refused, the sign-in may still be alive: another tab sharing the cookie refreshed
        // it a moment before, and its new cookie is on its way. The stream is tried once
        // that has landed; refused too, it waits REOPEN_MS.
        this.refusals = 1;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.open(), RACE_MS);
      },
      () => this.later(RETRY_MS),
    );
  }

  private later(ms: number): void {
    if (this.stopped) return;
    this.o.onHealth(false);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), ms);
  }
}

function parse(data: string): SessionEvent {
  try {
    const value = JSON.parse(data) as unknown;
    if (value && typeof value === 'object') return value as SessionEvent;
  } catch {
    // Not JSON: still a change, of something unnamed.
  }
  return {};
}

/** The browser's EventSource, cookies and all (same origin). */
export const browserStream: Connect = (url, handlers) => {
  const source = new EventSource(url);
  for (const name of ['ready', ...ANNOUNCEMENTS, 'expired', 'revoked']) {
    source.addEventListener(name, (event) => handlers.event(name, (event as MessageEvent<string>).data));
  }
  source.onerror = () => handlers.error(source.readyState === EventSource.CLOSED);
  return source;
};
