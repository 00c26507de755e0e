import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Session } from '../src/sessions/session.js';
import { CloseCode } from '../src/stream/close-codes.js';
import type { Api, ErrorBody } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { localSessionRecord, processesInGroups } from './support/processes.js';
import { overWebSocket, RfbViewer, SECURITY_NONE, StreamClosed } from './support/rfb.js';
import { waitFor } from './support/wait.js';

// Who may do what: every API route and the stream, for nobody, two users and an admin,
// against the real server, database and local runner.

const ADMIN_PASSWORD = 'matrix-admin-password-1';
const JWT_SECRET = 'matrix-jwt-secret-0123456789abcdefghijklmnop';
const USER_PASSWORD = 'matrix-user-password-1';
const FOREIGN_ORIGIN = 'http://evil.example';

type Who = 'anonymous' | 'A' | 'B' | 'admin';
/** Admin last: admins' cells are the ones that change things. */
const EVERYONE: Who[] = ['anonymous', 'B', 'A', 'admin'];
type Expected = Record<Who, number>;
type Reply<T = unknown> = { status: number; body: T };

const ERROR_CODES: Record<number, string> = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict' };

describe('access control matrix', () => {
  let sortie: TestSortie;
  let api: Api;
  const tokens: Partial<Record<Who, string>> = {};
  const ids: Partial<Record<Who, string>> = {};
  /** Every session any cell created, ended in after(). */
  const created = new Set<string>();
  let aliceSession: Session | undefined;

  const as = <T = unknown>(who: Who, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> => {
    const auth: Record<string, string> = tokens[who as Exclude<Who, 'anonymous'>] ? { authorization: `Bearer ${tokens[who]}` } : {};
    return api.request<T>(method, urlPath, body, { ...auth, ...headers });
  };

  /**
   * One row of the matrix: the same request from each principal, in EVERYONE's order. Every
   * cell is compared (all mismatches reported together), and every refusal must be a JSON
   * `{error, message}` whose `error` matches its status.
   */
  const row = async <T = unknown>(
    label: string,
    method: string,
    urlPath: string,
    body: unknown | ((who: Who) => unknown),
    expected: Expected,
  ): Promise<Record<Who, Reply<T>>> => {
    const replies = {} as Record<Who, Reply<T>>;
    const wrong: string[] = [];
    for (const who of EVERYONE) {
      const reply = await as<T>(who, method, urlPath, typeof body === 'function' ? (body as (w: Who) => unknown)(who) : body);
      replies[who] = reply;
      const session = reply.body as Partial<Session> | null;
      if (method === 'POST' && urlPath === '/api/sessions' && reply.status === 201 && session?.id) created.add(session.id);
      if (reply.status !== expected[who]) wrong.push(`${who}: ${reply.status} (expected ${expected[who]}) ${JSON.stringify(reply.body)}`);
      if (reply.status >= 400) {
        const err = reply.body as ErrorBody;
        assert.equal(typeof err, 'object', `${label} as ${who}: error body is JSON (${JSON.stringify(reply.body)})`);
        assert.deepEqual(Object.keys(err).sort(), ['error', 'message'], `${label} as ${who}: error body shape`);
        assert.equal(err.error, ERROR_CODES[reply.status], `${label} as ${who}: error code for ${reply.status}`);
        assert.ok(err.message.length > 0, `${label} as ${who}: a message`);
      }
    }
    assert.deepEqual(wrong, [], `${label} (${method} ${urlPath})`);
    return replies;
  };

  const catalogOf = async (who: Who): Promise<string[]> => {
    const res = await as<{ applications: Array<{ id: string }> }>(who, 'GET', '/api/apps');
    assert.equal(res.status, 200);
    return res.body.applications.map((a) => a.id).sort();
  };

  const end = async (id: string): Promise<void> => {
    const res = await as<Session>('admin', 'DELETE', `/api/sessions/${id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
  };

  const waitRunning = (id: string): Promise<Session> =>
    waitFor(
      async () => {
        const res = await as<Session>('admin', 'GET', `/api/sessions/${id}`);
        if (res.body.status === 'running') return res.body;
        assert.equal(res.body.status, 'creating', `session ${id}: ${res.body.reason}`);
        return undefined;
      },
      { what: `session ${id} to start`, timeoutMs: 30_000, intervalMs: 100 },
    );

  /** A's session that the stream and ownership cells use; launched by A (the POST matrix). */
  const aliceRunning = async (): Promise<Session> => {
    if (!aliceSession) {
      const res = await as<Session>('A', 'POST', '/api/sessions', { app_id: 'xterm' });
      assert.equal(res.status, 201);
      created.add(res.body.id);
      aliceSession = res.body;
    }
    return waitRunning(aliceSession.id);
  };

  before(async () => {
    sortie = await startTestSortie({
      name: 'auth-matrix',
      apps: [
        { id: 'xterm', name: 'XTerm', category: 'Development', visibility: 'public', launch_type: 'container', command: ['xterm'] },
        { id: 'xeyes', name: 'XEyes', category: 'Utilities', visibility: 'approved', launch_type: 'container', command: ['xeyes'] },
        // In the same category as xeyes: a category approval must not open an admin-only app.
        { id: 'xclock', name: 'XClock', category: 'Utilities', visibility: 'admin_only', launch_type: 'container', command: ['xclock'] },
      ],
      env: {
        SORTIE_AUTH: 'enabled',
        SORTIE_ADMIN_USERNAME: 'admin',
        SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD,
        SORTIE_JWT_SECRET: JWT_SECRET,
        // The matrix launches more sessions per user than the default limit of 3; the limit has its own tests.
        SORTIE_MAX_SESSIONS_PER_USER: '20',
      },
    });
    api = sortie.api;
    const signIn = async (username: string, password: string) => {
      const res = await api.request<{ access_token: string; user: { id: string } }>('POST', '/api/auth/login', { username, password });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const admin = await signIn('admin', ADMIN_PASSWORD);
    tokens.admin = admin.access_token;
    ids.admin = admin.user.id;
    for (const [who, username] of [['A', 'alice'], ['B', 'bob']] as const) {
      const res = await as<{ id: string; role: string }>('admin', 'POST', '/api/admin/users', { username, password: USER_PASSWORD, display_name: username.toUpperCase() });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.role, 'user');
      const signedIn = await signIn(username, USER_PASSWORD);
      tokens[who] = signedIn.access_token;
      ids[who] = signedIn.user.id;
    }
  });

  after(async () => {
    if (sortie) {
      const groups: number[] = [];
      const all = await as<{ sessions: Session[] }>('admin', 'GET', '/api/sessions');
      for (const s of all.body.sessions ?? []) created.add(s.id);
      for (const id of created) {
        try {
          groups.push(...localSessionRecord(sortie.stateDir, id).processes.map((p) => p.pid));
        } catch {
          // already ended: its state file is gone
        }
        await as('admin', 'DELETE', `/api/sessions/${id}`);
      }
      assert.deepEqual(processesInGroups(groups), [], 'every session the matrix started is gone');
    }
    await sortie?.cleanup();
  });

  test('public routes answer everyone', async () => {
    const config = await row<{ enabled: boolean; local: boolean }>('GET /api/auth/config', 'GET', '/api/auth/config', undefined, { anonymous: 200, A: 200, B: 200, admin: 200 });
    assert.equal(config.anonymous.body.enabled, true);
    assert.equal(config.anonymous.body.local, true);
    await row('GET /healthz', 'GET', '/healthz', undefined, { anonymous: 200, A: 200, B: 200, admin: 200 });
    await row('GET /readyz', 'GET', '/readyz', undefined, { anonymous: 200, A: 200, B: 200, admin: 200 });
  });

  test('GET /api/auth/me says who the token belongs to', async () => {
    const me = await row<{ user: { id: string; username: string; role: string } }>('GET /api/auth/me', 'GET', '/api/auth/me', undefined, { anonymous: 401, A: 200, B: 200, admin: 200 });
    assert.deepEqual(
      (['A', 'B', 'admin'] as const).map((who) => [me[who].body.user.id, me[who].body.user.username, me[who].body.user.role]),
      [
        [ids.A, 'alice', 'user'],
        [ids.B, 'bob', 'user'],
        [ids.admin, 'admin', 'admin'],
      ],
    );
    // A garbage token is no better than none.
    const bogus = await api.request<ErrorBody>('GET', '/api/auth/me', undefined, { authorization: 'Bearer not-a-token' });
    assert.equal(bogus.status, 401);
    assert.equal(bogus.body.error, 'unauthorized');
  });

  test('the catalog and launches follow visibility and approvals', async () => {
    assert.deepEqual(await catalogOf('admin'), ['xclock', 'xeyes', 'xterm']);
    assert.deepEqual(await catalogOf('A'), ['xterm'], 'neither approved nor admin-only apps before an approval');
    assert.deepEqual(await catalogOf('B'), ['xterm']);
    await row('GET /api/apps', 'GET', '/api/apps', undefined, { anonymous: 401, A: 200, B: 200, admin: 200 });

    // What a user cannot see they cannot launch either: it answers like an app that does not exist.
    const approvedBefore = await row<ErrorBody>('POST /api/sessions approved app, nobody approved', 'POST', '/api/sessions', { app_id: 'xeyes' }, { anonymous: 401, B: 404, A: 404, admin: 201 });
    assert.equal(approvedBefore.A.body.message, 'No app with id "xeyes" in the catalog');
    const adminOnly = await row<ErrorBody>('POST /api/sessions admin_only app', 'POST', '/api/sessions', { app_id: 'xclock' }, { anonymous: 401, B: 404, A: 404, admin: 201 });
    assert.equal(adminOnly.A.body.message, 'No app with id "xclock" in the catalog');
    const missing = await as<ErrorBody>('A', 'POST', '/api/sessions', { app_id: 'no-such-app' });
    assert.deepEqual([missing.status, missing.body.error], [404, 'not_found'], 'a hidden app and a missing one look alike');

    // Approvals: admins only; a user cannot approve themselves.
    await row('GET approvals of A', 'GET', `/api/admin/users/${ids.A}/approvals`, undefined, { anonymous: 401, B: 403, A: 403, admin: 200 });
    const approve = await row<{ app_ids: string[]; categories: string[] }>(
      'PUT approvals of A',
      'PUT',
      `/api/admin/users/${ids.A}/approvals`,
      { app_ids: [], categories: ['Utilities'] },
      { anonymous: 401, B: 403, A: 403, admin: 200 },
    );
    assert.deepEqual(approve.admin.body, { app_ids: [], categories: ['Utilities'] });
    assert.deepEqual((await as('admin', 'GET', `/api/admin/users/${ids.A}/approvals`)).body, { app_ids: [], categories: ['Utilities'] });

    assert.deepEqual(await catalogOf('A'), ['xeyes', 'xterm'], 'the approved category opens xeyes, not the admin-only xclock');
    assert.deepEqual(await catalogOf('B'), ['xterm'], "A's approval is A's alone");
    const approvedAfter = await row<Session>('POST /api/sessions approved app, A approved', 'POST', '/api/sessions', { app_id: 'xeyes' }, { anonymous: 401, B: 404, A: 201, admin: 201 });
    assert.equal(approvedAfter.A.body.user_id, ids.A);
    await row('POST /api/sessions admin_only app, A approved for its category', 'POST', '/api/sessions', { app_id: 'xclock' }, { anonymous: 401, B: 404, A: 404, admin: 201 });

    // An approval by app id works too, and taking it back closes the app again at once.
    assert.equal((await as('admin', 'PUT', `/api/admin/users/${ids.B}/approvals`, { app_ids: ['xeyes'] })).status, 200);
    assert.deepEqual(await catalogOf('B'), ['xeyes', 'xterm']);
    assert.equal((await as('admin', 'PUT', `/api/admin/users/${ids.B}/approvals`, { app_ids: [], categories: [] })).status, 200);
    assert.deepEqual(await catalogOf('B'), ['xterm']);
    assert.equal((await as('B', 'POST', '/api/sessions', { app_id: 'xeyes' })).status, 404);

    for (const id of created) if (id !== aliceSession?.id) await end(id);
  });

  test('sessions belong to their user; user_id in a request counts only for admins', async () => {
    const launched = await row<Session>('POST /api/sessions public app', 'POST', '/api/sessions', { app_id: 'xterm' }, { anonymous: 401, B: 201, A: 201, admin: 201 });
    for (const who of ['A', 'B', 'admin'] as const) assert.equal(launched[who].body.user_id, ids[who], `${who}'s session is ${who}'s`);
    aliceSession = launched.A.body;

    // A user naming someone else still launches as themselves; an admin launches for them.
    const onBehalf = await row<Session>("POST /api/sessions with B's user_id", 'POST', '/api/sessions', (who: Who) => ({ app_id: 'xterm', user_id: who === 'B' ? ids.A : ids.B }), {
      anonymous: 401,
      B: 201,
      A: 201,
      admin: 201,
    });
    assert.equal(onBehalf.A.body.user_id, ids.A, "a user's user_id is ignored");
    assert.equal(onBehalf.B.body.user_id, ids.B, "a user's user_id is ignored");
    assert.equal(onBehalf.admin.body.user_id, ids.B, "an admin's user_id is honoured");
    const forNobody = await as<ErrorBody>('admin', 'POST', '/api/sessions', { app_id: 'xterm', user_id: 'no-such-user' });
    assert.equal(forNobody.status, 400);
    assert.match(forNobody.body.message, /user_id/);

    // Listing: users see their own (whatever they ask for), admins everything or a filter.
    const listed = await row<{ sessions: Session[] }>('GET /api/sessions', 'GET', '/api/sessions', undefined, { anonymous: 401, B: 200, A: 200, admin: 200 });
    const owners = (who: Who) => [...new Set(listed[who].body.sessions.map((s) => s.user_id))].sort();
    assert.deepEqual(owners('A'), [ids.A]);
    assert.deepEqual(owners('B'), [ids.B]);
    assert.deepEqual(owners('admin'), [ids.A, ids.B, ids.admin].sort());
    assert.ok(listed.A.body.sessions.some((s) => s.id === aliceSession!.id));
    assert.ok(!listed.B.body.sessions.some((s) => s.id === aliceSession!.id));
    assert.equal(listed.admin.body.sessions.length, created.size, 'the admin sees every session');

    const filtered = await row<{ sessions: Session[] }>("GET /api/sessions?user_id=<A>", 'GET', `/api/sessions?user_id=${ids.A}`, undefined, { anonymous: 401, B: 200, A: 200, admin: 200 });
    assert.deepEqual([...new Set(filtered.admin.body.sessions.map((s) => s.user_id))], [ids.A], 'an admin can filter by user');
    assert.deepEqual(
      filtered.admin.body.sessions.map((s) => s.id).sort(),
      listed.A.body.sessions.map((s) => s.id).sort(),
      "the admin's filtered list is what A sees",
    );
    assert.deepEqual([...new Set(filtered.B.body.sessions.map((s) => s.user_id))], [ids.B], "B asking for A's sessions gets B's own");

    // Someone else's session is indistinguishable from one that does not exist.
    const missingId = randomUUID();
    const missing = await as<ErrorBody>('B', 'GET', `/api/sessions/${missingId}`);
    const read = await row<Session | ErrorBody>("GET /api/sessions/<A's session>", 'GET', `/api/sessions/${aliceSession.id}`, undefined, { anonymous: 401, B: 404, A: 200, admin: 200 });
    assert.deepEqual(
      { status: read.B.status, body: { ...(read.B.body as ErrorBody), message: (read.B.body as ErrorBody).message.replace(aliceSession.id, '<id>') } },
      { status: missing.status, body: { ...missing.body, message: missing.body.message.replace(missingId, '<id>') } },
    );
    assert.equal((read.A.body as Session).user_id, ids.A);

    // B cannot end it: 404 like a missing session, and it keeps running.
    const missingEnd = await as<ErrorBody>('B', 'DELETE', `/api/sessions/${missingId}`);
    const notYours = await as<ErrorBody>('B', 'DELETE', `/api/sessions/${aliceSession.id}`);
    assert.equal(notYours.status, 404);
    assert.deepEqual({ ...notYours.body, message: notYours.body.message.replace(aliceSession.id, '<id>') }, { ...missingEnd.body, message: missingEnd.body.message.replace(missingId, '<id>') });
    assert.equal((await as('anonymous', 'DELETE', `/api/sessions/${aliceSession.id}`)).status, 401);
    const still = await as<Session>('A', 'GET', `/api/sessions/${aliceSession.id}`);
    assert.ok(['creating', 'running'].includes(still.body.status), `still live after B's attempt (${still.body.status})`);

    // A ends its own; an admin ends anyone's (the admin's launch for B, ended by the admin).
    const ownEnd = await as<Session>('A', 'DELETE', `/api/sessions/${onBehalf.A.body.id}`);
    assert.deepEqual([ownEnd.status, ownEnd.body.status, ownEnd.body.reason], [200, 'terminated', 'Ended by its user']);
    const adminEnd = await as<Session>('admin', 'DELETE', `/api/sessions/${onBehalf.admin.body.id}`);
    assert.deepEqual([adminEnd.status, adminEnd.body.status, adminEnd.body.reason], [200, 'terminated', 'Ended by admin']);
    for (const who of ['B', 'admin'] as const) await end(launched[who].body.id);
    await end(onBehalf.B.body.id);
  });

  test("A's running session streams to A and the admin only: nobody → 4401, B → 4404, a foreign Origin → 4403", async () => {
    const session = await aliceRunning();
    const url = sortie.wsUrl(session.websocket_url);
    const bearer = (who: Exclude<Who, 'anonymous'>) => ({ authorization: `Bearer ${tokens[who]}` });

    const results = {
      anonymous: await openStream(url, {}),
      B: await openStream(url, bearer('B')),
      A: await openStream(url, bearer('A')),
      admin: await openStream(url, bearer('admin')),
    };
    assert.deepEqual(
      Object.fromEntries(Object.entries(results).map(([who, r]) => [who, 'closed' in r ? r.closed : 'desktop'])),
      { anonymous: CloseCode.Unauthorized, B: CloseCode.SessionNotFound, A: 'desktop', admin: 'desktop' },
    );
    for (const who of ['A', 'admin'] as const) {
      const r = results[who];
      assert.ok('desktop' in r);
      assert.deepEqual([r.desktop.banner, r.desktop.width, r.desktop.height], ['RFB 003.008', 1280, 800], `${who}'s ServerInit`);
    }
    // B's refusal is the same as for a session that does not exist.
    const missing = await openStream(sortie.wsUrl(`/ws/sessions/${randomUUID()}`), bearer('B'));
    assert.deepEqual('closed' in missing && missing.closed, CloseCode.SessionNotFound);

    // A page elsewhere cannot ride on A's sign-in, whether by cookie or by token.
    const cookie = { cookie: `sortie_access=${tokens.A}` };
    assert.deepEqual(await openStream(url, { ...bearer('A'), origin: FOREIGN_ORIGIN }), { closed: CloseCode.Forbidden });
    assert.deepEqual(await openStream(url, { ...cookie, origin: FOREIGN_ORIGIN }), { closed: CloseCode.Forbidden });
    assert.deepEqual(await openStream(url, { ...bearer('admin'), origin: FOREIGN_ORIGIN }), { closed: CloseCode.Forbidden });

    // As a browser on Sortie's own page does it: the access cookie and Sortie's origin.
    const browser = await openStream(url, { ...cookie, origin: sortie.url });
    assert.ok('desktop' in browser, `by cookie: ${JSON.stringify(browser)}`);
    assert.deepEqual(await openStream(url, { cookie: `sortie_access=${tokens.B}`, origin: sortie.url }), { closed: CloseCode.SessionNotFound });
    assert.deepEqual(await openStream(url, { cookie: 'sortie_access=garbage', origin: sortie.url }), { closed: CloseCode.Unauthorized });
  });

  test('a foreign Origin cannot change anything through the API, even with a valid token', async () => {
    const launch = await as<ErrorBody>('admin', 'POST', '/api/sessions', { app_id: 'xterm' }, { origin: FOREIGN_ORIGIN });
    assert.deepEqual([launch.status, launch.body.error], [403, 'forbidden']);
    const logout = await as<ErrorBody>('A', 'POST', '/api/auth/logout', undefined, { origin: FOREIGN_ORIGIN });
    assert.equal(logout.status, 403);
    const sameOrigin = await as('A', 'GET', '/api/auth/me', undefined, { origin: sortie.url });
    assert.equal(sameOrigin.status, 200, 'Sortie’s own origin is fine');
  });

  test('user administration is for admins only', async () => {
    const list = await row<{ users: Array<{ username: string }> }>('GET /api/admin/users', 'GET', '/api/admin/users', undefined, { anonymous: 401, B: 403, A: 403, admin: 200 });
    assert.deepEqual(list.admin.body.users.map((u) => u.username).sort(), ['admin', 'alice', 'bob']);
    assert.ok(!JSON.stringify(list.admin.body).includes('password'), 'no password hashes in the list');

    const made = await row<{ id: string }>(
      'POST /api/admin/users',
      'POST',
      '/api/admin/users',
      (who: Who) => ({ username: `carol-${who}`, password: USER_PASSWORD, role: 'admin' }),
      { anonymous: 401, B: 403, A: 403, admin: 201 },
    );
    assert.deepEqual(
      (await as<{ users: Array<{ username: string }> }>('admin', 'GET', '/api/admin/users')).body.users.map((u) => u.username).sort(),
      ['admin', 'alice', 'bob', 'carol-admin'],
      'only the admin created a user',
    );
    const carol = made.admin.body.id;
    // A user cannot promote themselves, nor anyone else.
    await row('PATCH /api/admin/users/<A> (role admin)', 'PATCH', `/api/admin/users/${ids.A}`, { role: 'admin' }, { anonymous: 401, B: 403, A: 403, admin: 200 });
    assert.equal((await as<{ user: { role: string } }>('A', 'GET', '/api/auth/me')).body.user.role, 'admin', 'the admin promoted A');
    assert.equal((await as('admin', 'PATCH', `/api/admin/users/${ids.A}`, { role: 'user' })).status, 200);
    assert.equal((await as<{ user: { role: string } }>('A', 'GET', '/api/auth/me')).body.user.role, 'user', 'a demotion takes effect at once');
    assert.equal((await as('A', 'GET', '/api/admin/users')).status, 403);

    await row('PATCH /api/admin/users/<carol>', 'PATCH', `/api/admin/users/${carol}`, { display_name: 'Carol' }, { anonymous: 401, B: 403, A: 403, admin: 200 });
    await row('GET approvals of carol', 'GET', `/api/admin/users/${carol}/approvals`, undefined, { anonymous: 401, B: 403, A: 403, admin: 200 });
    await row('PUT approvals of carol', 'PUT', `/api/admin/users/${carol}/approvals`, { categories: ['Utilities'] }, { anonymous: 401, B: 403, A: 403, admin: 200 });
    await row('DELETE /api/admin/users/<carol>', 'DELETE', `/api/admin/users/${carol}`, undefined, { anonymous: 401, B: 403, A: 403, admin: 204 });
    await row('GET /api/admin/users/<deleted>/approvals', 'GET', `/api/admin/users/${carol}/approvals`, undefined, { anonymous: 401, B: 403, A: 403, admin: 404 });
  });

  test('catalog administration is for admins only', async () => {
    const app = { id: 'matrix-extra', name: 'Extra', category: 'Utilities', visibility: 'public', launch_type: 'container', command: ['xeyes'] };
    await row('POST /api/apps', 'POST', '/api/apps', app, { anonymous: 401, B: 403, A: 403, admin: 201 });
    assert.ok((await catalogOf('B')).includes('matrix-extra'), 'a new public app shows for users');
    await row('PUT /api/apps/<id>', 'PUT', '/api/apps/matrix-extra', { ...app, visibility: 'admin_only' }, { anonymous: 401, B: 403, A: 403, admin: 200 });
    assert.ok(!(await catalogOf('B')).includes('matrix-extra'), 'made admin-only, it disappears for users');
    await row('DELETE /api/apps/<id>', 'DELETE', '/api/apps/matrix-extra', undefined, { anonymous: 401, B: 403, A: 403, admin: 204 });
    assert.ok(!(await catalogOf('admin')).includes('matrix-extra'));
  });

  test('POST /api/auth/logout ends only the sign-in it is called with', async () => {
    // Fresh sign-ins, so the matrix's own tokens stay valid.
    const spare: Partial<Record<Who, string>> = {};
    for (const [who, username, password] of [['A', 'alice', USER_PASSWORD], ['B', 'bob', USER_PASSWORD], ['admin', 'admin', ADMIN_PASSWORD]] as const) {
      const res = await api.request<{ access_token: string }>('POST', '/api/auth/login', { username, password });
      spare[who] = res.body.access_token;
    }
    const saved = { ...tokens };
    Object.assign(tokens, spare);
    try {
      await row('POST /api/auth/logout', 'POST', '/api/auth/logout', undefined, { anonymous: 401, B: 204, A: 204, admin: 204 });
      await row('GET /api/auth/me after logout', 'GET', '/api/auth/me', undefined, { anonymous: 401, B: 401, A: 401, admin: 401 });
    } finally {
      Object.assign(tokens, saved);
    }
    await row('GET /api/auth/me with the other sign-ins', 'GET', '/api/auth/me', undefined, { anonymous: 401, B: 200, A: 200, admin: 200 });
  });

  test('A ends its session; afterwards nobody can stream it', async () => {
    const session = await aliceRunning();
    const ended = await as<Session>('A', 'DELETE', `/api/sessions/${session.id}`);
    assert.deepEqual([ended.status, ended.body.status], [200, 'terminated']);
    const stream = await openStream(sortie.wsUrl(session.websocket_url), { authorization: `Bearer ${tokens.A}` });
    assert.deepEqual(stream, { closed: CloseCode.SessionEnded });
  });
});

interface ServerInit {
  banner: string;
  width: number;
  height: number;
  name: string;
}

/**
 * Opens a session stream with the given headers, as a browser or script would. Resolves
 * with the close code if Sortie refuses it, or with the desktop after a full RFB handshake
 * (security "None", ClientInit, ServerInit) if it relays it.
 */
async function openStream(url: string, headers: Record<string, string>): Promise<{ closed: number } | { desktop: ServerInit }> {
  const { origin, ...rest } = headers;
  const viewer = new RfbViewer(overWebSocket(url, { headers: rest, ...(origin ? { origin } : {}) }));
  const timer = setTimeout(() => viewer.transport.bytes.fail(new Error('no desktop within 15 s')), 15_000);
  try {
    const { banner, offered } = await viewer.greet();
    assert.deepEqual(offered, [SECURITY_NONE], 'Sortie offers the viewer security "None" only');
    assert.equal(await viewer.authenticate(offered), true, 'SecurityResult OK');
    const { width, height, name } = await viewer.init();
    return { desktop: { banner, width, height, name } };
  } catch (err) {
    if (err instanceof StreamClosed) return { closed: err.code };
    throw err;
  } finally {
    clearTimeout(timer);
    viewer.close();
  }
}
