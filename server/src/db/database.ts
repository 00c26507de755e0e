import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, sql, SqliteDialect, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { prepareDataFolder } from './data-folder.js';
import type { Database } from './schema.js';
import { migrations } from './migrations.js';
import { TextGuard } from './text-guard.js';

export type Db = Kysely<Database>;

/** Which database a Db talks to, for the few queries that must be written differently. */
const postgresDbs = new WeakSet<Kysely<unknown>>();

export function isPostgres(db: Kysely<never> | Kysely<Database>): boolean {
  return postgresDbs.has(db as Kysely<unknown>);
}

/**
 * Every PostgreSQL advisory lock Sortie takes, in one table so no two share a number: fixed
 * numbers the replicas agree on and nothing else on the server uses ("Srt…").
 */
export const LOCK_KEYS = {
  /** Running the migrations at start-up (a session-level lock on a connection of its own). */
  migration: 0x5072_7465,
  /** Numbering a session's arrival in the queue. */
  arrival: 0x5372_7441,
  /** A user's count and the insert of a session (Coordination.exclusive). */
  admission: 0x5372_7442,
  /** A queue pass (Coordination.exclusive). */
  queue: 0x5372_7443,
  /** Being the replica that leads (a session-level lock held for the life of the process). */
  lead: 0x5372_7444,
  /** Loading apps.json into the catalog. */
  catalog: 0x5372_7445,
} as const;

/**
 * Makes the transactions that call this with the same lock run one at a time, across every
 * replica on the database, until each ends: on PostgreSQL a transaction-level advisory lock;
 * SQLite has one writer and needs nothing. `db` is the database `tx` was opened on.
 */
export async function takeTurns(db: Db, tx: Db, lock: keyof typeof LOCK_KEYS): Promise<void> {
  if (isPostgres(db)) await sql`select pg_advisory_xact_lock(${LOCK_KEYS[lock]})`.execute(tx);
}

/** `postgres://` and `postgresql://` URLs select PostgreSQL; anything else is a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * Opens the database at `location`, a SQLite file or a PostgreSQL URL, and brings its schema
 * up to date. Every failure names the database (a PostgreSQL URL without its password):
 * "file is not a database" or "connection refused" alone does not say which one.
 */
export async function openDatabase(location: string, options: { onPoolError?: (err: Error) => void } = {}): Promise<Db> {
  return isPostgresUrl(location) ? openPostgres(location, options.onPoolError) : openSqlite(location);
}

/** WAL lets readers (the API) run while the writer (status updates) commits. */
async function openSqlite(file: string): Promise<Db> {
  let sqlite: SQLite.Database | undefined;
  try {
    if (file !== ':memory:') prepareDataFolder(file);
    sqlite = new SQLite(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }), plugins: [new TextGuard()] });
    await migrate(db);
    return db;
  } catch (err) {
    // A file that failed its migrations is not left open.
    sqlite?.close();
    throw new Error(`database ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** How long start-up (and later a query) waits for a connection before saying so. */
const CONNECT_TIMEOUT_MS = 10_000;

async function openPostgres(url: string, onPoolError: ((err: Error) => void) | undefined): Promise<Db> {
  const where = describePostgresUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle connection the server drops (a restart, a failover) is an 'error' event on the
  // pool; unheard, it would end the process. The pool opens a new one on the next query.
  pool.on('error', (err) => onPoolError?.(err));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [new TextGuard()] });
  postgresDbs.add(db as Kysely<unknown>);
  try {
    try {
      await sql`select 1`.execute(db);
    } catch (err) {
      throw new Error(`cannot connect: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    await migrateOnce(db, url);
    return db;
  } catch (err) {
    await db.destroy().catch(() => {});
    throw new Error(`database ${where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** `postgres://user@host:port/database`: the URL as an error message may show it, never with the password. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const socketDir = parsed.searchParams.get('host');
    const host = parsed.host || socketDir || 'localhost';
    const user = parsed.username ? `${decodeURIComponent(parsed.username)}@` : '';
    return `postgres://${user}${host}${parsed.pathname || '/'}`;
  } catch {
    return 'postgres://(a URL that does not parse)';
  }
}

/**
 * Several replicas start at once against one database, each running the migrations. Kysely's
 * migrator locks only while it applies them; before that each replica checks for and creates
 * its bookkeeping tables, and two doing that at once can fail on PostgreSQL's catalog (CREATE
 * TABLE IF NOT EXISTS is not atomic there). So the whole run happens under one session-level
 * advisory lock, held on a connection of its own: the first replica migrates, the others wait
 * and then find nothing to do. A replica that dies holding it drops its connection, and with
 * it the lock.
 */
async function migrateOnce(db: Db, url: string): Promise<void> {
  const lockClient = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  lockClient.on('error', () => {});
  await lockClient.connect();
  try {
    await lockClient.query('select pg_advisory_lock($1)', [LOCK_KEYS.migration]);
    await migrate(db);
  } finally {
    await lockClient.end().catch(() => {});
  }
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

async function migrate(db: Db): Promise<void> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`Database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}
