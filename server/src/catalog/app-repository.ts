import type { Db } from '../db/database.js';
import type { AppsTable } from '../db/schema.js';
import type { App } from './app.js';

/** The catalog as stored. apps.json seeds it at start-up; later the API will manage it. */
export class AppRepository {
  constructor(private readonly db: Db) {}

  /** Makes the stored catalog equal to `apps`, in their order, in one transaction. */
  async replaceAll(apps: App[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('apps').execute();
      if (apps.length === 0) return;
      await tx
        .insertInto('apps')
        .values(apps.map((app, position) => ({ ...toRow(app), position })))
        .execute();
    });
  }

  async list(): Promise<App[]> {
    const rows = await this.db.selectFrom('apps').selectAll().orderBy('position').execute();
    return rows.map(fromRow);
  }

  async get(id: string): Promise<App | undefined> {
    const row = await this.db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }
}

function toRow(app: App): Omit<AppsTable, 'position'> {
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
  };
}

function fromRow(row: Omit<AppsTable, 'position'> & { position: number }): App {
  const { position: _position, command, resource_limits, ...rest } = row;
  return {
    ...rest,
    ...(command ? { command: JSON.parse(command) as string[] } : {}),
    resource_limits: JSON.parse(resource_limits) as App['resource_limits'],
  };
}
