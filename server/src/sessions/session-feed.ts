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
  close(): Promise<void>;
}

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
  publish(change: SessionChange): void {
    this.listeners.emit({ type: 'change', change });
  }
  subscribe(listener: FeedListener): () => void {
    return this.listeners.add(listener);
  }
  async close(): Promise<void> {}
}

const CHANNEL = 'sortie_session_changes';
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;

/**
 * NOTIFY/LISTEN across replicas. While the connection is down, changes made here still reach
 * this replica's readers; other replicas' readers get a `resync` once it is back (their UI
 * polls meanwhile on its slow interval, so nothing is lost for long).
 */
export class PostgresSessionFeed implements SessionFeed {
  private readonly listeners = new Listeners();
  private client: pg.Client | undefined;
  private connected = false;
  private closed = false;
  private retryMs = RECONNECT_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private publishing: Promise<void> = Promise.resolve();

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
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10_000, keepAlive: true });
    this.client = client;
    client.on('notification', (message) => {
      const change = parseChange(message.payload);
      if (change) this.listeners.emit({ type: 'change', change });
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
      this.listeners.emit({ type: 'resync' });
    }
  }

  publish(change: SessionChange): void {
    const client = this.client;
    if (!client || !this.connected) {
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
          this.listeners.emit({ type: 'change', change });
        },
      );
  }

  subscribe(listener: FeedListener): () => void {
    return this.listeners.add(listener);
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

function parseChange(payload: string | undefined): SessionChange | undefined {
  try {
    const value = JSON.parse(payload ?? '') as Partial<SessionChange>;
    if (typeof value.id === 'string' && typeof value.user_id === 'string' && typeof value.status === 'string') {
      return { id: value.id, user_id: value.user_id, status: value.status, ...(value.left_queue === true ? { left_queue: true } : {}) };
    }
  } catch {
    // Not ours: another program on the channel.
  }
  return undefined;
}
