import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Migrations live in code (not files on disk) so the built server carries them. Each is
 * written with Kysely's schema builder, which speaks SQLite and PostgreSQL alike.
 * Never edit a migration that has shipped: add a new one.
 */
export const migrations: Record<string, Migration> = {
  '0001_sessions_and_apps': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('pod_name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('endpoint', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('last_active_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_user_created').on('sessions').columns(['user_id', 'created_at']).execute();
      await db.schema.createIndex('sessions_status').on('sessions').column('status').execute();
      await db.schema.createIndex('sessions_created').on('sessions').column('created_at').execute();

      await db.schema
        .createTable('apps')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('icon', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('visibility', 'text', (c) => c.notNull())
        .addColumn('launch_type', 'text', (c) => c.notNull())
        .addColumn('container_image', 'text', (c) => c.notNull())
        .addColumn('command', 'text')
        .addColumn('resource_limits', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull().defaultTo(sql`0`))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('apps').execute();
      await db.schema.dropTable('sessions').execute();
    },
  },
};
