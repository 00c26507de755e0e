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
  '0002_users_and_access': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text')
        .addColumn('oidc_subject', 'text', (c) => c.unique())
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(sql`0`))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // One row per sign-in: the refresh token's hash lives here, and revoking the row
      // refuses every access token issued for it at once.
      await db.schema
        .createTable('logins')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('refresh_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('logins_user').on('logins').column('user_id').execute();
      await db.schema
        .createTable('approvals')
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('approvals_pk', ['user_id', 'kind', 'value'])
        .execute();
      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
      // Apps created or edited through the API are kept when apps.json is loaded again.
      await db.schema.alterTable('apps').addColumn('source', 'text', (c) => c.notNull().defaultTo('file')).execute();
      // The per-session VNC password: only Sortie and the session's VNC server know it.
      await db.schema.alterTable('sessions').addColumn('stream_secret', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('sessions').dropColumn('stream_secret').execute();
      await db.schema.alterTable('apps').dropColumn('source').execute();
      for (const table of ['settings', 'approvals', 'logins', 'users']) await db.schema.dropTable(table).execute();
    },
  },
  '0003_launch_queue': {
    async up(db: Kysely<unknown>) {
      // Existing rows keep a null arrival: only sessions created from now on can be queued.
      await db.schema.alterTable('sessions').addColumn('arrival', 'integer').execute();
      await db.schema.createIndex('sessions_status_arrival').on('sessions').columns(['status', 'arrival']).execute();
      await db.schema.alterTable('apps').addColumn('max_sessions', 'integer').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('apps').dropColumn('max_sessions').execute();
      await db.schema.dropIndex('sessions_status_arrival').execute();
      await db.schema.alterTable('sessions').dropColumn('arrival').execute();
    },
  },
  '0004_refresh_token_reuse': {
    async up(db: Kysely<unknown>) {
      // The refresh token just replaced, and when: presenting it again moments later is a
      // race between two tabs; later, or any older token, is a stolen one and ends the sign-in.
      await db.schema.alterTable('logins').addColumn('previous_refresh_hash', 'text').execute();
      await db.schema.alterTable('logins').addColumn('refreshed_at', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('logins').dropColumn('refreshed_at').execute();
      await db.schema.alterTable('logins').dropColumn('previous_refresh_hash').execute();
    },
  },
  '0005_app_file_transfer': {
    async up(db: Kysely<unknown>) {
      // Apps stored before the setting existed keep what they could do: both ways.
      await db.schema.alterTable('apps').addColumn('file_transfer', 'text', (c) => c.notNull().defaultTo('both')).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('apps').dropColumn('file_transfer').execute();
    },
  },
  '0006_app_clipboard': {
    async up(db: Kysely<unknown>) {
      // Apps stored before the setting existed keep what they could do: both ways.
      await db.schema.alterTable('apps').addColumn('clipboard', 'text', (c) => c.notNull().defaultTo('both')).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('apps').dropColumn('clipboard').execute();
    },
  },
  '0007_app_persistent_home': {
    async up(db: Kysely<unknown>) {
      // Apps stored before the setting existed keep what they did: a home per session.
      await db.schema.alterTable('apps').addColumn('persistent_home', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('apps').dropColumn('persistent_home').execute();
    },
  },
  '0008_audit_events': {
    async up(db: Kysely<unknown>) {
      // Who did what to what, when and from where. No foreign keys: an event outlives the
      // user, session or app it names, and is removed only by SORTIE_AUDIT_RETENTION_DAYS.
      await db.schema
        .createTable('audit_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('actor_name', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text')
        .addColumn('target_id', 'text')
        .addColumn('target_name', 'text')
        .addColumn('address', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      // Pages run newest first by (at, id); the filters narrow by actor or action first.
      await db.schema.createIndex('audit_events_at').on('audit_events').columns(['at', 'id']).execute();
      await db.schema.createIndex('audit_events_actor_id_at').on('audit_events').columns(['actor_id', 'at']).execute();
      await db.schema.createIndex('audit_events_actor_name_at').on('audit_events').columns(['actor_name', 'at']).execute();
      await db.schema.createIndex('audit_events_action_at').on('audit_events').columns(['action', 'at']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('audit_events').execute();
    },
  },
  '0009_warm_pool': {
    async up(db: Kysely<unknown>) {
      // Apps stored before the setting existed keep no pool.
      await db.schema.alterTable('apps').addColumn('warm_pool', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      // Set while a session waits in its app's warm pool (nobody's yet): the definition it was
      // started from. Null for every session that belongs to someone, existing ones included.
      await db.schema.alterTable('sessions').addColumn('pool_definition', 'text').execute();
      await db.schema.createIndex('sessions_pool').on('sessions').columns(['app_id', 'pool_definition']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('sessions_pool').execute();
      await db.schema.alterTable('sessions').dropColumn('pool_definition').execute();
      await db.schema.alterTable('apps').dropColumn('warm_pool').execute();
    },
  },
  '0010_session_shares': {
    async up(db: Kysely<unknown>) {
      // A share lets another user (or whoever redeems a link) watch or control a live session.
      // A link's token is kept only as its SHA-256; a redeemed link becomes a user share with
      // `link_id` naming it, so revoking the link revokes what it gave. Ended shares stay
      // (with `ended_at`) for the owner's list until the session's row goes.
      await db.schema
        .createTable('session_shares')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('mode', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('token_hash', 'text')
        .addColumn('link_id', 'text')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('ended_at', 'text')
        .execute();
      await db.schema.createIndex('session_shares_session').on('session_shares').column('session_id').execute();
      await db.schema.createIndex('session_shares_user').on('session_shares').columns(['user_id', 'ended_at']).execute();
      await db.schema.createIndex('session_shares_token').on('session_shares').column('token_hash').unique().execute();
      // Who has a stream of someone else's session open now, on any replica; `seen_at` is
      // refreshed while the stream lasts, so a row a stopped replica left behind goes stale.
      await db.schema
        .createTable('session_watchers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('mode', 'text', (c) => c.notNull())
        .addColumn('via', 'text', (c) => c.notNull())
        .addColumn('opened_at', 'text', (c) => c.notNull())
        .addColumn('seen_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('session_watchers_session').on('session_watchers').columns(['session_id', 'seen_at']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('session_watchers').execute();
      await db.schema.dropTable('session_shares').execute();
    },
  },
  '0011_recordings': {
    async up(db: Kysely<unknown>) {
      // Apps stored before the setting existed record nothing, and no earlier session was recorded.
      await db.schema.alterTable('apps').addColumn('recording', 'text', (c) => c.notNull().defaultTo('off')).execute();
      await db.schema.alterTable('sessions').addColumn('recorded', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      // One recording per recorded session; no foreign keys: a recording outlives its session,
      // user and app, and goes only by SORTIE_RECORDING_RETENTION_DAYS or an admin's delete.
      await db.schema
        .createTable('recordings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'text')
        .addColumn('duration_ms', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('size_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('segments', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('incomplete', 'text')
        .execute();
      await db.schema.createIndex('recordings_started_at').on('recordings').columns(['started_at', 'id']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('recordings').execute();
      await db.schema.alterTable('sessions').dropColumn('recorded').execute();
      await db.schema.alterTable('apps').dropColumn('recording').execute();
    },
  },
  '0012_scrape_and_repair_indexes': {
    async up(db: Kysely<unknown>) {
      // Every /metrics scrape counts sessions by status and app: from this index alone, not by
      // reading every session ever made.
      await db.schema.createIndex('sessions_status_app').on('sessions').columns(['status', 'app_id']).execute();
      // The leader looks for open recordings every minute beside other replicas: the few open
      // ones, not the whole table.
      await db.schema.createIndex('recordings_open').on('recordings').column('session_id').where(sql.ref('ended_at'), 'is', null).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('recordings_open').execute();
      await db.schema.dropIndex('sessions_status_app').execute();
    },
  },
  '0013_session_progress': {
    async up(db: Kysely<unknown>) {
      // A launch's steps (JSON) in its row, so every replica answers with the same steps as
      // the one watching the launch. Null for every session before it, and once one runs or ends.
      await db.schema.alterTable('sessions').addColumn('progress', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('sessions').dropColumn('progress').execute();
    },
  },
};
