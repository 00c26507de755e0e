import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { sql } from 'kysely';
import { freshTestDatabase } from '../../test/support/postgres.js';
import { freePort } from '../../test/support/ports.js';
import pino from 'pino';
import { AuthService } from '../auth/auth-service.js';
import { UserRepository } from '../auth/user-repository.js';
import { loadConfig } from '../config/config.js';
import { AppRepository } from '../catalog/app-repository.js';
import type { App } from '../catalog/app.js';
import { InputError } from '../errors.js';
import { SessionRepository } from '../sessions/session-repository.js';
import { migrations } from './migrations.js';
import { openDatabase, type Db } from './database.js';

// The database layer on both databases Sortie speaks: a real SQLite file and a real
// PostgreSQL server (a throwaway cluster from Debian's package). Every repository query
// must answer the same on both.

const scratch = mkdtempSync(path.join(tmpdir(), 'sortie-db-'));
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

let files = 0;
const databases: Array<{ name: string; location: () => Promise<string> }> = [
  { name: 'SQLite', location: async () => path.join(scratch, `db-${++files}`, 'sortie.db') },
  {
    name: 'PostgreSQL',
    location: async () => {
      const fresh = await freshTestDatabase();
      cleanups.push(fresh.drop);
      return fresh.url;
    },
  },
];

async function open(location: string): Promise<Db> {
  const db = await openDatabase(location);
  cleanups.push(() => db.destroy());
  return db;
}

const NOW = '2026-01-02T03:04:05.000Z';

function sessionRow(id: string, changes: Partial<{ user_id: string; status: 'queued' | 'creating' | 'running'; last_active_at: string; created_at: string }> = {}) {
  const created = changes.created_at ?? NOW;
  return {
    id,
    user_id: changes.user_id ?? 'alice',
    app_id: 'xterm',
    app_name: 'XTerm',
    pod_name: `sortie-${id}`,
    status: changes.status ?? 'creating',
    reason: null,
    endpoint: null,
    created_at: created,
    updated_at: created,
    last_active_at: changes.last_active_at ?? created,
    stream_secret: null,
  };
}

const APP: App = {
  id: 'xterm',
  name: 'XTerm',
  description: 'A terminal',
  url: '',
  icon: '',
  category: 'Tools',
  visibility: 'public',
  launch_type: 'container',
  container_image: 'example/xterm:1',
  command: ['xterm'],
  resource_limits: { cpu_request: '100m', cpu_limit: '1', memory_request: '128Mi', memory_limit: '512Mi' },
  persistent_home: true,
  file_transfer: 'both',
  clipboard: 'none',
  recording: 'off',
  warm_pool: 0,
};

for (const database of databases) {
  describe(`on ${database.name}`, () => {
    test('every migration runs, and opening the database again finds nothing left to do', async () => {
      const location = await database.location();
      const first = await open(location);
      const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(first);
      assert.deepEqual(
        applied.rows.map((r) => r.name),
        Object.keys(migrations).sort(),
      );
      await first.destroy();
      const again = await open(location);
      const reapplied = await sql<{ n: number | string }>`select count(*) as n from kysely_migration`.execute(again);
      assert.equal(Number(reapplied.rows[0]!.n), Object.keys(migrations).length);
    });

    test('several Sorties starting at once on an empty database migrate it once, and all of them start', async () => {
      const location = await database.location();
      // SQLite is one file for one process; the race is PostgreSQL's, where replicas share one server.
      const starters = database.name === 'PostgreSQL' ? 4 : 1;
      const dbs = await Promise.all(Array.from({ length: starters }, () => open(location)));
      const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(dbs[0]!);
      assert.equal(applied.rows.length, Object.keys(migrations).length);
      await new SessionRepository(dbs[starters - 1]!).insert(sessionRow('s1'));
      assert.equal((await new SessionRepository(dbs[0]!).get('s1'))?.id, 's1');
    });

    test('sessions inserted at the same time get distinct arrival numbers, in the order of the queue', async () => {
      const repo = new SessionRepository(await open(await database.location()));
      const inserted = await Promise.all(Array.from({ length: 12 }, (_, i) => repo.insert(sessionRow(`q${i}`, { status: 'queued' }))));
      const arrivals = inserted.map((s) => s.arrival!).sort((a, b) => a - b);
      assert.deepEqual(arrivals, Array.from({ length: 12 }, (_, i) => i + 1));
      const queued = await repo.queuedIds();
      assert.equal(queued.length, 12);
      const last = inserted.find((s) => s.id === queued[11])!;
      assert.equal(await repo.queuePosition(last.arrival!), 12);
    });

    test('times stored as text compare as times: the idle sweep finds exactly the sessions idle before the cutoff', async () => {
      const repo = new SessionRepository(await open(await database.location()));
      await repo.insert(sessionRow('old', { last_active_at: '2026-01-02T03:04:04.999Z' }));
      await repo.insert(sessionRow('edge', { last_active_at: '2026-01-02T03:04:05.000Z' }));
      await repo.insert(sessionRow('new', { last_active_at: '2026-01-02T10:00:00.000Z' }));
      const idle = await repo.listLiveIdleSince('2026-01-02T03:04:05.000Z');
      assert.deepEqual(idle.map((s) => s.id), ['old']);
      assert.equal(await repo.countActiveOf('alice'), 3);
      assert.equal(typeof (await repo.countActiveOf('alice')), 'number');
    });

    test('a transition is taken once: the row it returns is the moved one, a second move from the old status gets nothing', async () => {
      const repo = new SessionRepository(await open(await database.location()));
      await repo.insert(sessionRow('t1'));
      const [a, b] = await Promise.all([repo.transition('t1', 'terminated', { reason: 'first' }), repo.transition('t1', 'failed', { reason: 'second' })]);
      const winners = [a, b].filter((r) => r !== undefined);
      assert.equal(winners.length, 1);
      assert.equal((await repo.get('t1'))?.reason, winners[0]!.reason);
      assert.equal(await repo.transition('t1', 'running'), undefined);
    });

    test('usernames are unique and case-sensitive, and a taken one is refused without an error', async () => {
      const users = new UserRepository(await open(await database.location()));
      const row = { id: 'u1', username: 'alice', display_name: 'Alice', role: 'user' as const, password_hash: null, oidc_subject: null, created_at: NOW };
      assert.equal(await users.insert(row), true);
      assert.equal(await users.insert({ ...row, id: 'u2' }), false);
      assert.equal(await users.insert({ ...row, id: 'u3', username: 'Alice' }), true);
      assert.equal((await users.byUsername('ALICE'))?.id, undefined);
      assert.equal((await users.byUsername('Alice'))?.id, 'u3');
      assert.equal(await users.count(), 2);
      const disabled = await users.update('u1', { disabled: 1 });
      assert.equal(disabled?.disabled, 1);
      assert.equal(await users.countAdmins(), 0);
    });

    test('text with a NUL character is refused as bad input, and the transaction it was in leaves nothing behind', async () => {
      const db = await open(await database.location());
      const apps = new AppRepository(db);
      await apps.loadFromFile([APP]);
      // The file's apps are deleted, then the new ones inserted: one transaction.
      await assert.rejects(apps.loadFromFile([{ ...APP, name: 'X\u0000Term' }]), InputError);
      assert.deepEqual(await apps.list(), [APP]);
      const users = new UserRepository(db);
      await assert.rejects(users.byUsername('alice\u0000'), InputError);
      await assert.rejects(users.update('u1', { display_name: '\u0000' }), InputError);
    });

    test('apps keep their settings through a round trip, and a second create with the same id is refused', async () => {
      const apps = new AppRepository(await open(await database.location()));
      assert.equal(await apps.create(APP), true);
      assert.equal(await apps.create({ ...APP, name: 'Other' }), false);
      assert.deepEqual(await apps.get('xterm'), APP);
      await apps.loadFromFile([{ ...APP, id: 'a-file', persistent_home: false }]);
      assert.deepEqual(
        (await apps.list()).map((a) => [a.id, a.persistent_home]),
        [
          ['a-file', false],
          ['xterm', true],
        ],
      );
    });

    test('several Sorties loading the catalog file at once all start, and the catalog is the file', async () => {
      const location = await database.location();
      const starters = database.name === 'PostgreSQL' ? 4 : 1;
      const dbs = await Promise.all(Array.from({ length: starters }, () => open(location)));
      const file = [APP, { ...APP, id: 'other', persistent_home: false }];
      await Promise.all(dbs.map((db) => new AppRepository(db).loadFromFile(file)));
      assert.deepEqual(await new AppRepository(dbs[0]!).list(), file);
    });

    test('Sorties making the first admin at once make one, and only its maker logs a password', async () => {
      const location = await database.location();
      const starters = database.name === 'PostgreSQL' ? 3 : 1;
      const dbs = await Promise.all(Array.from({ length: starters }, () => open(location)));
      const said: string[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void said.push(JSON.parse(line).msg) });
      await Promise.all(dbs.map((db) => AuthService.create(new UserRepository(db), loadConfig({}).auth, logger)));
      assert.equal(await new UserRepository(dbs[0]!).countAdmins(), 1);
      assert.equal(said.filter((msg) => msg.startsWith('created the first admin')).length, 1);
    });

    test('a setting stored once keeps the first value', async () => {
      const users = new UserRepository(await open(await database.location()));
      const results = await Promise.all(['one', 'two', 'three'].map((v) => users.settingOnce('jwt', v)));
      assert.equal(new Set(results).size, 1);
      assert.equal(await users.setting('jwt'), results[0]);
    });
  });
}

describe('PostgreSQL that cannot be reached', () => {
  test('start-up says which server and database, and never the password', async () => {
    const port = await freePort();
    await assert.rejects(openDatabase(`postgres://sortie:hunter2-secret@127.0.0.1:${port}/sortie`), (err: Error) => {
      assert.match(err.message, new RegExp(`^database postgres://sortie@127\\.0\\.0\\.1:${port}/sortie: cannot connect: .*ECONNREFUSED`));
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
  });

  test('a wrong password is named as such, without the password', async () => {
    const fresh = await freshTestDatabase();
    cleanups.push(fresh.drop);
    const url = new URL(fresh.url);
    url.password = 'not-the-password';
    await assert.rejects(openDatabase(url.toString()), (err: Error) => {
      assert.match(err.message, /^database postgres:\/\/sortie@127\.0\.0\.1:\d+\/sortie_\w+: cannot connect: password authentication failed for user "sortie"/);
      assert.doesNotMatch(err.message, /not-the-password/);
      return true;
    });
  });
});
