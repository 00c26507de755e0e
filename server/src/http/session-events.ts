import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Principal } from '../auth/principal.js';
import { ForbiddenError, InputError, TooManyRequestsError, UnauthorizedError } from '../errors.js';
import type { FeedEvent, SessionFeed } from '../sessions/session-feed.js';
import { SIGNED_IN } from './access-gate.js';
import { principal } from './auth-hook.js';
import type { RequestGate } from './request-gate.js';

export interface SessionEventsOptions {
  feed: SessionFeed;
  gate: RequestGate;
  /** Open streams one user may hold (tabs); browsers allow about 6 connections per host anyway. */
  maxPerUser?: number;
  /** Open streams on this replica. */
  maxTotal?: number;
  /** A comment this often keeps proxies from closing an idle stream, and re-checks the sign-in (SORTIE_STREAM_PING_INTERVAL, 25 s). */
  heartbeatMs?: number;
}

/** Unsent bytes a reader may fall behind by before it is dropped (its UI falls back to polling). */
const MAX_BACKLOG_BYTES = 64 * 1024;
/** What EventSource waits before reconnecting to a dropped stream. */
const RETRY_MS = 5_000;

interface Reader {
  userId: string;
  res: ServerResponse;
  end: () => void;
  /** Asks again whether the sign-in allows this stream, and ends it with why if not. */
  check: () => void;
}

/** Why a stream ends before its reader leaves: the last event it is sent. */
const ENDINGS = {
  expired: 'The access token this stream was opened with has expired; refresh it and open the stream again',
  revoked: 'This sign-in has ended or no longer allows this stream; sign in again',
} as const;

/** setTimeout's longest delay; a token living longer is caught by the heartbeat's re-check instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `GET /api/events`: Server-Sent Events telling the UI that sessions changed, so it fetches
 * them instead of polling. A user hears of their own sessions (`event: session`, with id,
 * user_id and status) and, without any detail, that the queue moved (`event: queue`: their
 * queued sessions' places may have changed); an admin may ask for everyone's with
 * `?scope=all`. `event: resync` means changes may have been missed: fetch everything again.
 *
 * The stream is authorised once, by the access token it was opened with, and lasts as long
 * as that token: when it expires the stream ends with `event: expired` (refresh the token and
 * open a new stream). The sign-in is checked again at every heartbeat, and at once on the
 * replica where a sign-in ended or a user changed (recheck), so a signed-out or disabled
 * user's stream (or an admin's scope=all stream once they are no longer one) ends with
 * `event: revoked` there at once, elsewhere within one heartbeat (25 s); a new stream would
 * be refused.
 */
export class SessionEvents {
  private readonly readers = new Set<Reader>();
  private readonly maxPerUser: number;
  private readonly maxTotal: number;
  private readonly heartbeatMs: number;
  private readonly unsubscribe: () => void;

  constructor(private readonly o: SessionEventsOptions) {
    this.maxPerUser = o.maxPerUser ?? 8;
    this.maxTotal = o.maxTotal ?? 2_000;
    this.heartbeatMs = o.heartbeatMs ?? 25_000;
    this.unsubscribe = o.feed.subscribe((event) => this.deliver(event));
  }

  private readonly filters = new WeakMap<Reader, (event: FeedEvent) => string | undefined>();

  routes(app: FastifyInstance): void {
    app.get<{ Querystring: { scope?: string } }>('/api/events', SIGNED_IN, async (request, reply) => {
      const who = principal(request);
      const scope = request.query.scope ?? 'mine';
      if (scope !== 'mine' && scope !== 'all') throw new InputError('scope: must be "mine" (your sessions, the default) or "all" (administrators only)');
      if (scope === 'all' && who.role !== 'admin') throw new ForbiddenError('scope=all needs an administrator; leave it out to hear of your own sessions');
      if (!String(request.headers.accept ?? '').includes('text/event-stream')) {
        throw new InputError('This is a Server-Sent Events stream: ask for it with "Accept: text/event-stream" (EventSource does)');
      }
      const mine = [...this.readers].filter((r) => r.userId === who.userId).length;
      if (mine >= this.maxPerUser) {
        throw new TooManyRequestsError(`You have ${mine} live-update streams open, the most one user may; close a Sortie tab (the others keep polling)`, 30);
      }
      if (this.readers.size >= this.maxTotal) {
        throw new TooManyRequestsError(`This server has ${this.readers.size} live-update streams open, its limit; the page keeps updating by polling`, 30);
      }
      reply.hijack();
      this.open(reply.raw, who, scope === 'all', request.headers);
    });
  }

  private open(res: ServerResponse, who: Principal, all: boolean, headers: IncomingHttpHeaders): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // nginx and others buffer responses unless told not to.
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    let heartbeat: NodeJS.Timeout | undefined;
    let expiry: NodeJS.Timeout | undefined;
    const reader: Reader = {
      userId: who.userId,
      res,
      end: () => {
        clearInterval(heartbeat);
        clearTimeout(expiry);
        if (!this.readers.delete(reader)) return;
        res.end();
      },
      check: () =>
        void this.o.gate.principal(headers).then(
          (now) => {
            if (now.userId !== who.userId || (all && now.role !== 'admin')) finish('revoked');
          },
          (err: unknown) => {
            // Not a verdict on the sign-in (the database did not answer): EventSource retries soon.
            if (!(err instanceof UnauthorizedError)) return reader.end();
            finish(expiresAt !== undefined && Date.now() >= expiresAt ? 'expired' : 'revoked');
          },
        ),
    };
    const finish = (why: keyof typeof ENDINGS) => {
      if (!this.readers.has(reader)) return;
      this.write(reader, `event: ${why}\ndata: ${JSON.stringify({ message: ENDINGS[why] })}\n\n`);
      reader.end();
    };
    const expiresAt = who.accessExpiresAt?.getTime();
    this.filters.set(reader, (event) => {
      if (event.type === 'resync') return 'event: resync\ndata: {}\n\n';
      const change = event.change;
      if (all || change.user_id === who.userId) return `event: session\ndata: ${JSON.stringify(change)}\n\n`;
      // Someone else's session left the queue: places behind it moved. (Its launch steps,
      // also `creating`, move nobody's place and are not told to others.)
      if (change.left_queue) return 'event: queue\ndata: {}\n\n';
      return undefined;
    });
    this.readers.add(reader);
    res.on('close', reader.end);
    res.on('error', reader.end);
    this.write(reader, `retry: ${RETRY_MS}\nevent: ready\ndata: {}\n\n`);
    if (expiresAt !== undefined && expiresAt - Date.now() <= MAX_TIMER_MS) {
      expiry = setTimeout(() => finish('expired'), Math.max(0, expiresAt - Date.now()));
    }
    heartbeat = setInterval(() => {
      this.write(reader, ': heartbeat\n\n');
      reader.check();
    }, this.heartbeatMs);
  }

  /** A sign-in ended or a user changed on this replica: every open stream asks again now. */
  recheck(): void {
    for (const reader of this.readers) reader.check();
  }

  private deliver(event: FeedEvent): void {
    for (const reader of this.readers) {
      const text = this.filters.get(reader)?.(event);
      if (text) this.write(reader, text);
    }
  }

  /** A reader that stopped reading is dropped, not buffered for without end. */
  private write(reader: Reader, text: string): void {
    if (reader.res.writableLength > MAX_BACKLOG_BYTES) {
      reader.res.destroy();
      reader.end();
      return;
    }
    reader.res.write(text);
  }

  /** Open streams on this replica. */
  get size(): number {
    return this.readers.size;
  }

  /** Ends every stream (shutting down): EventSource reconnects, to another replica behind a balancer. */
  close(): void {
    this.unsubscribe();
    for (const reader of [...this.readers]) reader.end();
  }
}
