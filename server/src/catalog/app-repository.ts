import { takeTurns, type Db } from '../db/database.js';
import type { AppsTable } from '../db/schema.js';
import type { App } from './app.js';

type AppRow = Omit<AppsTable, 'position' | 'source'>;

/**
 * The catalog as stored. apps.json is loaded at every start; apps that an admin created or
 * edited through the API belong to the API from then on and are left alone by the file.
 */
export class AppRepository {
  constructor(private readonly db: Db) {}

  /** Brings the file's apps up to date, in the file's order, in one transaction. */
  async loadFromFile(apps: App[]): Promise<{ loaded: number; keptFromApi: string[] }> {
    return this.db.transaction().execute(async (tx) => {
      // Replicas starting together load the same file: in turn, or the second would insert
      // the ids the first just inserted (its delete did not see them).
      await takeTurns(this.db, tx, 'catalog');
      const apiOwned = new Set((await tx.selectFrom('apps').select('id').where('source', '=', 'api').execute()).map((r) => r.id));
      await tx.deleteFrom('apps').where('source', '=', 'file').execute();
      const fromFile = apps.filter((app) => !apiOwned.has(app.id));
      if (fromFile.length > 0) {
        await tx
          .insertInto('apps')
          .values(fromFile.map((app) => ({ ...toRow(app), position: apps.indexOf(app), source: 'file' as const })))
          .execute();
      }
      return { loaded: fromFile.length, keptFromApi: apps.filter((app) => apiOwned.has(app.id)).map((app) => app.id) };
    });
  }

  async list(): Promise<App[]> {
    const rows = await this.db.selectFrom('apps').selectAll().orderBy('position').orderBy('id').execute();
    return rows.map(fromRow);
  }

  async get(id: string): Promise<App | undefined> {
    const row = await this.db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }

  /** Adds an app at the end of the catalog; false when the id is taken. */
  async create(app: App): Promise<boolean> {
    const last = await this.db.selectFrom('apps').select((eb) => eb.fn.max('position').as('max')).executeTakeFirst();
    const result = await this.db
      .insertInto('apps')
      .values({ ...toRow(app), position: Number(last?.max ?? -1) + 1, source: 'api' })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** Replaces an app; false when there is none with that id. */
  async update(app: App): Promise<boolean> {
    const result = await this.db.updateTable('apps').set({ ...toRow(app), source: 'api' }).where('id', '=', app.id).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('apps').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function toRow(app: App): AppRow {
  return {
    id: app.id,
    name: app.name,
    description: app.description,
    url: app.url,
    icon: app.icon,
    category: app.category,
    visibility: app.visibility,
    launch_type: app.launch_type,
    container_image: app.container_image,
    command: app.command ? JSON.stringify(app.command) : null,
    resource_limits: JSON.stringify(app.resource_limits),
    max_sessions: app.max_sessions ?? null,
    persistent_home: app.persistent_home ? 1 : 0,
    file_transfer: app.file_transfer,
    clipboard: app.clipboard,
    recording: app.recording ?? 'off',
    warm_pool: app.warm_pool ?? 0,
  };
}

function fromRow(row: AppRow & { position: number; source: string }): App {
  const { position: _position, source: _source, command, resource_limits, max_sessions, persistent_home, ...rest } = row;
  return {
    ...rest,
    persistent_home: persistent_home === 1,
    ...(command ? { command: JSON.parse(command) as string[] } : {}),
    ...(max_sessions !== null ? { max_sessions } : {}),
    resource_limits: JSON.parse(resource_limits) as App['resource_limits'],
  };
}
