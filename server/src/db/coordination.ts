import pg from 'pg';
import type { Logger } from 'pino';
import { Serial } from '../sessions/serial.js';
import { isPostgres, isPostgresUrl, LOCK_KEYS, takeTurns, type Db } from './database.js';

/**
 * What replicas sharing one database agree on. SQLite means one replica (one process owns
 * the file), so there it is in-process; on PostgreSQL it is advisory locks in the database
 * every replica already shares: no Kubernetes Lease, so it works for both runners and the
 * Role does not grow, and a lock held by a connection dies with it.
 */
export interface Coordination {
  /** Whether other replicas may share the database: then another one may be mid-launch at any moment. */
  readonly shared: boolean;
  /**
   * Runs `work` while nobody else, on this replica or another, runs work under the same
   * name: a check followed by a write (count, then insert or start) as one step.
   */
  exclusive<T>(name: ExclusiveWork, work: () => Promise<T>): Promise<T>;
  /**
   * Whether this replica is the one that does the work done once across replicas
   * (reconciliation at start-up, the idle sweep, audit pruning). A replica that is not tries
   * again on each call, so another takes over when the one leading goes away.
   */
  lead(): Promise<boolean>;
  close(): Promise<void>;
}

/** `admission`: a user's count and the insert of a session. `queue`: a queue pass. */
export type ExclusiveWork = 'admission' | 'queue';


/** In one process: the steps take turns in the order asked, and this replica always leads. */
export class InProcessCoordination implements Coordination {
  readonly shared = false;
  private readonly turns = new Map<ExclusiveWork, Serial>();

  exclusive<T>(name: ExclusiveWork, work: () => Promise<T>): Promise<T> {
    let serial = this.turns.get(name);
    if (!serial) this.turns.set(name, (serial = new Serial()));
    return serial.run(work);
  }

  async lead(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}

/**
 * Across replicas on one PostgreSQL. `exclusive` holds a transaction-level advisory lock
 * while `work` runs (its queries go through the pool; they commit before the lock is let go,
 * so the next holder sees them). Within a replica the steps first take turns in process, so
 * a burst waits in memory rather than holding one pooled connection per waiter.
 * Leading is a session-level advisory lock on a connection of its own, held for the life of
 * the process: when the replica dies, the server drops the connection and the lock with it.
 */
export class PostgresCoordination implements Coordination {
  readonly shared = true;
  private readonly local = new InProcessCoordination();
  private leader: pg.Client | undefined;
  private trying: Promise<boolean> | undefined;
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  exclusive<T>(name: ExclusiveWork, work: () => Promise<T>): Promise<T> {
    return this.local.exclusive(name, () =>
      this.db.transaction().execute(async (tx) => {
        await takeTurns(this.db, tx, name);
        return work();
      }),
    );
  }

  lead(): Promise<boolean> {
    if (this.leader) return Promise.resolve(true);
    return (this.trying ??= this.tryToLead().finally(() => (this.trying = undefined)));
  }

  private async tryToLead(): Promise<boolean> {
    if (this.closed) return false;
    // Keepalives both ways: a leader whose machine or network vanished must lose the lock in
    // seconds, not after the operating system's two hours; a server that cannot be reached
    // must not hold up the next try, or shutdown, for minutes.
    const client = new pg.Client({ connectionString: this.url, keepAlive: true, keepAliveInitialDelayMillis: 10_000, connectionTimeoutMillis: 10_000 });
    // A dropped connection took the lock with it: lead no more, try again on the next call.
    const lost = (err?: Error) => {
      if (this.leader !== client) return;
      this.leader = undefined;
      this.logger.warn({ err: err?.message }, 'lost the connection that made this replica lead; another replica may take over');
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      // The server's side: it drops the connection (and the lock) when this replica stops answering.
      await client.query('set tcp_keepalives_idle = 10; set tcp_keepalives_interval = 5; set tcp_keepalives_count = 3');
      const { rows } = await client.query<{ held: boolean }>('select pg_try_advisory_lock($1) as held', [LOCK_KEYS.lead]);
      if (rows[0]?.held && !this.closed) {
        this.leader = client;
        this.logger.info('this replica leads: it reconciles, sweeps idle sessions and prunes the audit log');
        return true;
      }
    } catch (err) {
      this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not ask whether this replica leads');
    }
    await client.end().catch(() => {});
    return false;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.trying;
    const leader = this.leader;
    this.leader = undefined;
    // Ending the connection lets go of the lock: the next replica to ask leads.
    await leader?.end().catch(() => {});
  }
}

/** The coordination `db` needs: across replicas on PostgreSQL, in process on SQLite. */
export function coordinationFor(db: Db, location: string, logger: Logger): Coordination {
  return isPostgres(db) && isPostgresUrl(location) ? new PostgresCoordination(db, location, logger) : new InProcessCoordination();
}
