import type { Logger } from 'pino';
import pg from 'pg';
import type { SessionStatus } from '../contract/sessions.js';

/** That a session changed (status, queue place, launch step): readers fetch it again for the rest. */
export interface SessionChange {
  id: string;
  user_id: string;
  status: SessionStatus;
  /** The session just left the launch queue: every queued session behind it moved up a place. */
  left_queue?: true;
}

/**
 * `change` for one session; `resync` when changes may have been missed (the replicas' channel
 * was down), so every reader should fetch its list again.
 */
export type FeedEvent = { type: 'change'; change: SessionChange } | { type: 'resync' };
export type FeedListener = (event: FeedEvent) => void;

/**
 * Session changes for this replica's event streams. On SQLite there is one replica and the
 * feed is in-process; on PostgreSQL every replica publishes with NOTIFY and hears all of
 * them (its own included) by LISTEN on one connection of its own.
 */
export interface SessionFeed {
  publish(change: SessionChange): void;
  subscribe(listener: FeedListener): () => void;
  /** Tells every replica that these sessions' streams are about to move (this one drains): stream/stream-handoff.ts. */
  announceMoving(sessionIds: readonly string[]): void;
  onMoving(listener: MovingListener): () => void;
  close(): Promise<void>;
}

export type MovingListener = (sessionIds: string[]) => void;

class Listeners {
  private readonly set = new Set<FeedListener>();
  add(listener: FeedListener): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }
  emit(event: FeedEvent): void {
    for (const listener of this.set) listener(event);
  }
}

export class LocalSessionFeed implements SessionFeed {
  private readonly listeners = new Listeners();
  private readonly moving = new Set<MovingListener>();
  publish(change: SessionChange): void {
    this.listeners.emit({ type: 'change', change });
  }
  subscribe(listener: FeedListener): () => void {
    return this.listeners.add(listener);
  }
  announceMoving(sessionIds: readonly string[]): void {
    for (const listener of this.moving) listener([...sessionIds]);
  }
  onMoving(listener: MovingListener): () => void {
    this.moving.add(listener);
    return () => this.moving.delete(listener);
  }
  async close(): Promise<void> {}
}

const CHANNEL = 'sortie_session_changes';
/** Session ids per NOTIFY of moving streams: a payload must stay under PostgreSQL's 8000 bytes. */
const MOVING_PER_NOTICE = 150;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;

/**
 * NOTIFY/LISTEN across replicas, on one connection of this replica's own. While it is down,
 * two things go astray:
 *  - other replicas' NOTIFYs never reach this replica, so its readers miss them: once the
 *    connection is back they are told to `resync`;
 *  - changes made here reach only this replica's readers, so other replicas' readers miss
 *    them: if there were any, the replica NOTIFYs a `resync` to every replica once back.
 * Their UI polls meanwhile on its slow interval, so nothing is lost for long.
 */
export class PostgresSessionFeed implements SessionFeed {
  private readonly listeners = new Listeners();
  private readonly moving = new Set<MovingListener>();
  private client: pg.Client | undefined;
  private connected = false;
  private closed = false;
  private retryMs = RECONNECT_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private publishing: Promise<void> = Promise.resolve();
  /** A change was told to this replica's readers only: other replicas' readers missed it. */
  private unsent = false;

  private constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  static async open(url: string, logger: Logger): Promise<PostgresSessionFeed> {
    const feed = new PostgresSessionFeed(url, logger);
    await feed.connect();
    return feed;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: 10_000,
      // Named, so an operator finds it in pg_stat_activity.
      application_name: 'sortie-session-feed',
      // A connection that dies without a word (a vanished host) is noticed by the probes, not in hours.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    this.client = client;
    client.on('notification', (message) => {
      if (this.client !== client) return;
      const moving = parseMoving(message.payload);
      if (moving) for (const listener of this.moving) listener(moving);
      const event = moving ? undefined : parseEvent(message.payload);
      if (event) this.listeners.emit(event);
    });
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      const wasConnected = this.connected;
      this.connected = false;
      client.end().catch(() => {});
      if (this.closed) return;
      if (wasConnected) this.logger.warn({ err }, 'session change channel lost; reconnecting');
      this.retryTimer = setTimeout(() => void this.connect().catch(() => {}), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      lost(err as Error);
      throw err;
    }
    const again = this.retryMs > RECONNECT_MIN_MS;
    this.connected = true;
    this.retryMs = RECONNECT_MIN_MS;
    if (again) {
      this.logger.info('session change channel back');
      if (this.unsent) this.broadcastResync(client);
      else this.listeners.emit({ type: 'resync' });
    }
  }

  /** Every replica's readers re-read, this one's too (the NOTIFY comes back here). */
  private broadcastResync(client: pg.Client): void {
    this.unsent = false;
    this.publishing = this.publishing
      .then(() => client.query('select pg_notify($1, $2)', [CHANNEL, RESYNC_PAYLOAD]))
      .then(
        () => undefined,
        (err: unknown) => {
          // Lost again: the next reconnect tries once more.
          this.unsent = true;
          this.logger.warn({ err }, 'could not tell the other replicas to re-read their sessions');
          this.listeners.emit({ type: 'resync' });
        },
      );
  }

  publish(change: SessionChange): void {
    const client = this.client;
    if (!client || !this.connected) {
      this.unsent = true;
      this.listeners.emit({ type: 'change', change });
      return;
    }
    // One query at a time on a pg client; NOTIFYs keep their order this way too.
    this.publishing = this.publishing
      .then(() => client.query('select pg_notify($1, $2)', [CHANNEL, JSON.stringify(change)]))
      .then(
        () => undefined,
        (err: unknown) => {
          this.logger.warn({ err, sessionId: change.id }, 'could not publish a session change');
          this.unsent = true;
          this.listeners.emit({ type: 'change', change });
        },
      );
  }

  subscribe(listener: FeedListener): () => void {
    return this.listeners.add(listener);
  }

  /** Best effort: a notice lost (the channel is down) only makes those viewers' reconnects slower. */
  announceMoving(sessionIds: readonly string[]): void {
    const client = this.client;
    if (!client || !this.connected) return;
    for (let i = 0; i < sessionIds.length; i += MOVING_PER_NOTICE) {
      const payload = JSON.stringify({ moving: sessionIds.slice(i, i + MOVING_PER_NOTICE) });
      this.publishing = this.publishing
        .then(() => client.query('select pg_notify($1, $2)', [CHANNEL, payload]))
        .then(
          () => undefined,
          (err: unknown) => this.logger.warn({ err }, 'could not tell the other replicas which streams are moving'),
        );
    }
  }

  onMoving(listener: MovingListener): () => void {
    this.moving.add(listener);
    return () => this.moving.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.publishing;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}

/** What a replica NOTIFYs when changes it made were told to its own readers only. */
const RESYNC_PAYLOAD = JSON.stringify({ resync: true });

/** The session ids of a moving-streams notice, if it is one (ids as the stream path takes them, at most a notice's worth). */
function parseMoving(payload: string | undefined): string[] | undefined {
  try {
    const value = JSON.parse(payload ?? '') as { moving?: unknown };
    if (!Array.isArray(value.moving)) return undefined;
    return value.moving.filter((id): id is string => typeof id === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(id)).slice(0, MOVING_PER_NOTICE);
  } catch {
    return undefined;
  }
}

function parseEvent(payload: string | undefined): FeedEvent | undefined {
  try {
    const value = JSON.parse(payload ?? '') as Partial<SessionChange> & { resync?: unknown };
    if (value.resync === true) return { type: 'resync' };
    if (typeof value.id === 'string' && typeof value.user_id === 'string' && typeof value.status === 'string') {
      return { type: 'change', change: { id: value.id, user_id: value.user_id, status: value.status, ...(value.left_queue === true ? { left_queue: true } : {}) } };
    }
  } catch {
    // Not ours: another program on the channel.
  }
  return undefined;
}
