import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type MigrationProvider } from 'kysely';
import { prepareDataFolder } from './data-folder.js';
import type { Database } from './schema.js';
import { migrations } from './migrations.js';

export type Db = Kysely<Database>;

/**
 * Opens the SQLite file (creating its folder, Sortie's alone) and brings the schema up to
 * date. WAL lets readers (the API) run while the writer (status updates) commits. Every
 * failure names the file: "file is not a database" alone does not say which one.
 */
export async function openDatabase(file: string): Promise<Db> {
  try {
    if (file !== ':memory:') prepareDataFolder(file);
    const sqlite = new SQLite(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    await migrate(db);
    return db;
  } catch (err) {
    throw new Error(`database ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
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
