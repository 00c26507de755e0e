import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Session } from '../src/sessions/session.js';
import type { Api } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { openTestDatabase } from './support/postgres.js';
import { localSessionRecord, processesInGroups } from './support/processes.js';
import { readDesktop, RfbViewer } from './support/rfb.js';
import { waitFor } from './support/wait.js';

// The warm pool on the real local runner (real Xvnc, websockify and xterm), through the real
// HTTP API, on SQLite (or PostgreSQL with SORTIE_TEST_DATABASE=postgres).

const XTERM = { id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'], warm_pool: 2 };
const XCLOCK = { id: 'xclock', name: 'XClock', launch_type: 'container', command: ['xclock'] };
const ADMIN_PASSWORD = 'warm-pool-admin-password';

/** Every session the admin list holds (these tests make a few dozen at most). */
async function allSessions(api: Api): Promise<Session[]> {
  const res = await api.request<{ sessions: Session[] }>('GET', '/api/sessions?limit=200');
  assert.equal(res.status, 200, res.text);
  return res.body.sessions;
}

async function pooled(api: Api, appId = 'xterm'): Promise<Session[]> {
  return (await allSessions(api)).filter((s) => s.pooled && s.app_id === appId && (s.status === 'creating' || s.status === 'running'));
}

/** Waits until the app's pool holds exactly `size` sessions, all running and none of `not`; answers with them. */
async function poolOf(api: Api, size: number, appId = 'xterm', not: readonly Session[] = [], timeoutMs = 60_000): Promise<Session[]> {
  return waitFor(
    async () => {
      const now = await pooled(api, appId);
      const ready = now.length === size && now.every((s) => s.status === 'running' && !not.some((old) => old.id === s.id));
      return ready ? now : undefined;
    },
    { what: `the ${appId} pool to hold ${size} running sessions`, timeoutMs, intervalMs: 100 },
  );
}

/**
 * Switches the app's pool off and waits until it is empty: the harness's cleanup ends every
 * session, and each end would otherwise refill the pool behind it.
 */
async function switchOff(api: Api, app: Record<string, unknown>): Promise<void> {
  const res = await api.request('PUT', `/api/apps/${String(app.id)}`, { ...app, warm_pool: 0 });
  assert.equal(res.status, 200, res.text);
  await waitFor(async () => (await pooled(api, String(app.id))).length === 0, { what: 'the pool to be empty', timeoutMs: 30_000 });
}

function killAll(stateDir: string, id: string): number[] {
  const groups = localSessionRecord(stateDir, id).processes.map((p) => p.pid);
  for (const group of groups) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return groups;
}

describe('a warm pool of 2', () => {
  let sortie: TestSortie;
  let admin: Api;
  before(async () => {
    sortie = await startTestSortie({
      name: 'warm-pool',
      apps: [XTERM, XCLOCK],
      env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD, SORTIE_MAX_SESSIONS: '8', SORTIE_MAX_SESSIONS_PER_USER: '5' },
    });
    admin = await sortie.signIn('admin', ADMIN_PASSWORD);
  });
  after(async () => {
    if (admin) await switchOff(admin, XTERM);
    await sortie?.cleanup();
  });

  test('a launch is running in the POST answer, streams, belongs to its user only, and the pool refills to 2', async () => {
    const warm = await poolOf(admin, 2);
    const aliceId = await admin.createUser('alice', 'alice-password-1');
    const alice = await sortie.signIn('alice', 'alice-password-1');
    // Nobody's sessions yet: not in a person's own list.
    assert.deepEqual((await alice.request<{ sessions: Session[] }>('GET', '/api/sessions')).body.sessions, []);
    for (const s of warm) assert.equal((await alice.request('GET', `/api/sessions/${s.id}`)).status, 404);

    const res = await alice.request<Session>('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.status, 'running', 'running in the POST answer');
    assert.ok(warm.some((s) => s.id === res.body.id), 'one of the pooled sessions');
    assert.equal(res.body.user_id, aliceId);
    assert.equal(res.body.pooled, undefined);
    assert.ok(Date.parse(res.body.created_at) >= Date.parse(warm.find((s) => s.id === res.body.id)!.created_at));

    const listed = (await alice.request<{ sessions: Session[] }>('GET', '/api/sessions')).body.sessions;
    assert.deepEqual(listed.map((s) => s.id), [res.body.id], "alice's list holds her session and no pooled one");
    const desktop = await readDesktop(sortie.wsUrl(res.body.websocket_url), { headers: { authorization: `Bearer ${alice.token}` } });
    assert.equal(desktop.banner, 'RFB 003.008');
    assert.ok(desktop.nonBlank, 'the xterm is on the desktop');

    const refilled = await poolOf(admin, 2);
    assert.ok(!refilled.some((s) => s.id === res.body.id), 'the claimed session left the pool');

    // The audit log has the claim as a launch like any other.
    const audit = await admin.request<{ events: Array<{ action: string; target_id: string }> }>('GET', '/api/admin/audit?action=session.launch');
    assert.equal(audit.status, 200, audit.text);
    assert.ok(audit.body.events.some((e) => e.target_id === res.body.id));

    // Each pooled session has a VNC secret of its own.
    const db = await openTestDatabase(sortie.dir);
    try {
      const rows = await sql<{ stream_secret: string }>`select stream_secret from sessions where status in ('creating', 'running')`.execute(db);
      const secrets = rows.rows.map((r) => r.stream_secret);
      assert.equal(new Set(secrets).size, secrets.length);
    } finally {
      await db.destroy();
    }
    assert.equal((await alice.end(res.body.id)).status, 200);
  });

  test("Sortie connects to a pooled desktop before its claim, and the first viewer's stream runs over that connection", async () => {
    const warm = await poolOf(admin, 2);
    // websockify forks one process per connection: the forks in its group count the connections it serves.
    const websockifyGroup = (id: string) => [localSessionRecord(sortie.stateDir, id).processes.find((p) => p.role === 'websockify')!.pid];
    for (const s of warm) {
      await waitFor(() => processesInGroups(websockifyGroup(s.id)).length === 2, { what: `Sortie's connection to pooled session ${s.id}` });
    }
    await admin.createUser('bob', 'bob-password-12');
    const bob = await sortie.signIn('bob', 'bob-password-12');
    const res = await bob.request<Session>('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(res.body.status, 'running', res.text);
    const group = websockifyGroup(res.body.id);
    const headers = { authorization: `Bearer ${bob.token}` };
    const first = await RfbViewer.connect(sortie.wsUrl(res.body.websocket_url), { headers });
    try {
      assert.equal(first.desktop.width, 1280);
      assert.equal(processesInGroups(group).length, 2, 'the first viewer made websockify fork no new process: it has the connection opened ahead');
      const second = await RfbViewer.connect(sortie.wsUrl(res.body.websocket_url), { headers });
      try {
        assert.equal(processesInGroups(group).length, 3, 'a second viewer opens a connection of its own');
      } finally {
        second.viewer.close();
      }
    } finally {
      first.viewer.close();
    }
    assert.equal((await bob.end(res.body.id)).status, 200);
  });

  test("a pooled session's processes killed behind Sortie's back are replaced: the pool is back to 2", async () => {
    const [victim] = await poolOf(admin, 2);
    const groups = killAll(sortie.stateDir, victim!.id);
    await waitFor(async () => (await admin.session(victim!.id)).status === 'terminated' || (await admin.session(victim!.id)).status === 'failed', {
      what: 'the killed pooled session to end',
      timeoutMs: 15_000,
    });
    const now = await poolOf(admin, 2);
    assert.ok(!now.some((s) => s.id === victim!.id));
    assert.deepEqual(processesInGroups(groups), []);
  });

  test('the idle sweep leaves pooled sessions alone, and an admin cannot stream one', async () => {
    const [one] = await poolOf(admin, 2);
    const idle = await sortie.sortie.sessions.expireIdle();
    assert.equal(idle, 0);
    assert.equal((await admin.session(one!.id)).status, 'running');
    await assert.rejects(readDesktop(sortie.wsUrl(one!.websocket_url), { headers: { authorization: `Bearer ${admin.token}` } }));
  });

  test('warm_pool is checked: a whole number from 0 to 20, not with persistent_home, not for a link', async () => {
    for (const [body, fragment] of [
      [{ ...XTERM, id: 'bad', warm_pool: 21 }, /warm_pool.*at most 20/],
      [{ ...XTERM, id: 'bad', warm_pool: -1 }, /warm_pool.*0 to 20/],
      [{ ...XTERM, id: 'bad', warm_pool: 1.5 }, /warm_pool.*whole number/],
      [{ ...XTERM, id: 'bad', warm_pool: 1, persistent_home: true }, /warm_pool.*persistent_home/],
      [{ id: 'bad', name: 'Link', launch_type: 'url', url: 'https://example.com', warm_pool: 1 }, /warm_pool.*link/],
    ] as const) {
      const res = await admin.request<{ message: string }>('POST', '/api/apps', body);
      assert.equal(res.status, 400, res.text);
      assert.match(res.body.message, fragment);
    }
  });

  test("an admin's edit of the app replaces its pool; a smaller warm_pool shrinks it; deleting the app ends it", async () => {
    const before = await poolOf(admin, 2);
    const edited = await admin.request('PUT', '/api/apps/xterm', { ...XTERM, command: ['xterm', '-title', 'edited'] });
    assert.equal(edited.status, 200, edited.text);
    // All new sessions: poolOf waits for two running ones that were not there before.
    const after = await poolOf(admin, 2, 'xterm', before);
    for (const old of before) {
      const s = await admin.session(old.id);
      assert.equal(s.status, 'terminated');
      assert.match(s.reason ?? '', /changed/);
    }

    assert.equal((await admin.request('PUT', '/api/apps/xterm', { ...XTERM, command: ['xterm', '-title', 'edited'], warm_pool: 1 })).status, 200);
    const shrunk = await poolOf(admin, 1);
    assert.ok(after.some((s) => s.id === shrunk[0]!.id), 'one of the sessions already warm stays');

    assert.equal((await admin.request('DELETE', '/api/apps/xterm')).status, 204);
    await poolOf(admin, 0);
    assert.equal((await admin.session(shrunk[0]!.id)).status, 'terminated');
    // Back as it was, for the tests after this one.
    assert.equal((await admin.request('POST', '/api/apps', XTERM)).status, 201);
    await poolOf(admin, 2);
  });

  test('concurrent launches never share a pooled session', async () => {
    const warm = await poolOf(admin, 2);
    const launches = await Promise.all(['u1', 'u2', 'u3', 'u4'].map(() => admin.request<Session>('POST', '/api/sessions', { app_id: 'xterm' })));
    for (const res of launches) assert.equal(res.status, 201, res.text);
    const ids = launches.map((res) => res.body.id);
    assert.equal(new Set(ids).size, 4, 'four different sessions');
    const fromPool = launches.filter((res) => res.body.status === 'running').map((res) => res.body.id);
    assert.deepEqual(fromPool.sort(), warm.map((s) => s.id).sort(), 'each pooled session went to exactly one launch');
    for (const id of ids) await admin.end(id);
    await poolOf(admin, 2);
  });
});

describe('a warm pool within SORTIE_MAX_SESSIONS', () => {
  let sortie: TestSortie;
  let api: Api;
  before(async () => {
    sortie = await startTestSortie({ name: 'warm-pool-limits', apps: [XTERM, XCLOCK], env: { SORTIE_MAX_SESSIONS: '3' } });
    api = sortie.api;
  });
  after(async () => {
    if (api) await switchOff(api, XTERM);
    await sortie?.cleanup();
  });

  test('pooled sessions count toward the limit, refill only into free room and give their place to a queued launch', async () => {
    let most = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const live = (await allSessions(api)).filter((s) => s.status === 'creating' || s.status === 'running').length;
        most = Math.max(most, live);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      await poolOf(api, 2);
      const bob = await api.launch('xclock', 'bob');
      assert.equal(bob.status, 'creating', 'the third place was free');
      const alice = await api.launch('xterm', 'alice');
      assert.equal(alice.status, 'running', 'from the pool');
      // Full (xclock, alice's xterm, one pooled): the pool does not refill past the limit.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal((await pooled(api)).length, 1);

      // A person's launch is not kept waiting by the pool: the pooled session gives its place.
      const carol = await api.launch('xclock', 'carol');
      await api.waitFor(carol.id, 'running', 30_000);
      assert.equal((await pooled(api)).length, 0);

      // Room again: the pool takes it back.
      await api.end(bob.id);
      await poolOf(api, 1);
      await api.end(carol.id);
      await poolOf(api, 2);
      await api.end(alice.id);
    } finally {
      watching = false;
      await watcher;
    }
    assert.ok(most <= 3, `at most 3 sessions live at once, saw ${most}`);
  });
});

describe('a warm pool across a restart of Sortie', () => {
  let first: TestSortie | undefined;
  let second: TestSortie | undefined;
  after(async () => {
    if (second) await switchOff(second.api, XTERM);
    await second?.cleanup();
    // The second ran on the first's folder (and database): the first's clean-up removes them.
    await first?.cleanup();
  });

  test('the pooled sessions are adopted; one whose processes died meanwhile is replaced', async () => {
    first = await startTestSortie({ name: 'warm-pool-restart', apps: [XTERM], env: { SORTIE_MAX_SESSIONS: '4' } });
    const warm = await poolOf(first.api, 2);
    await first.stop();
    const [kept, lost] = warm;
    const groups = killAll(first.stateDir, lost!.id);
    await waitFor(() => processesInGroups(groups).length === 0, { what: 'the killed session to be gone' });

    second = await startTestSortie({ name: 'warm-pool-restart', apps: [XTERM], env: { SORTIE_MAX_SESSIONS: '4' }, dir: first.dir });
    const after = await poolOf(second.api, 2);
    assert.ok(after.some((s) => s.id === kept!.id), 'the live pooled session was adopted');
    assert.ok(!after.some((s) => s.id === lost!.id));
    assert.notEqual((await second.api.session(lost!.id)).status, 'running');
    const claimed = await second.api.launch('xterm', 'dave');
    assert.equal(claimed.status, 'running');
    assert.equal(claimed.id, kept!.id, 'the oldest pooled session goes first');
    const desktop = await readDesktop(second.wsUrl(claimed.websocket_url));
    assert.ok(desktop.nonBlank);
    await second.api.end(claimed.id);
  });
});
