import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import pino from 'pino';
import type { Session } from '../src/sessions/session.js';
import { setCookies, type Api, type ErrorBody, type Reply, type Tokens } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';

// Tokens, sign-in and account administration as people and scripts meet them: against the
// real server and database, with tokens forged the way an attacker would.

const ADMIN_PASSWORD = 'tokens-admin-password-1';
const JWT_SECRET = 'tokens-jwt-secret-0123456789abcdefghijklmnopq';
const PASSWORD = 'tokens-user-password-1';

const APPS = [
  { id: 'xterm', name: 'XTerm', visibility: 'public', launch_type: 'container', command: ['xterm'] },
  { id: 'xclock', name: 'XClock', visibility: 'admin_only', launch_type: 'container', command: ['xclock'] },
];

/** Requests through `api`, each with its own token, body and headers. */
function client(api: Api) {
  return <T = unknown>(method: string, urlPath: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply<T>> =>
    api.as(options.token).request<T>(method, urlPath, options.body, options.headers);
}

function assertError(reply: Reply<unknown>, status: number, message?: RegExp): void {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  const body = reply.body as ErrorBody;
  assert.deepEqual(Object.keys(body).sort(), ['error', 'message']);
  if (message) assert.match(body.message, message);
}

describe('tokens and sign-in', () => {
  let sortie: TestSortie;
  let call: ReturnType<typeof client>;
  let admin: Tokens;
  let aliceId: string;

  const login = async (username: string, password: string): Promise<Tokens> => {
    const res = await call<Tokens>('POST', '/api/auth/login', { body: { username, password } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const me = (token: string) => call<{ user: { id: string; username: string } }>('GET', '/api/auth/me', { token });
  const refresh = (refreshToken: string) => call<Tokens>('POST', '/api/auth/refresh', { body: { refresh_token: refreshToken } });

  before(async () => {
    sortie = await startTestSortie({
      name: 'auth-tokens',
      env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD, SORTIE_JWT_SECRET: JWT_SECRET },
      apps: APPS,
    });
    call = client(sortie.api);
    admin = await login('admin', ADMIN_PASSWORD);
    const created = await call<{ id: string }>('POST', '/api/admin/users', { token: admin.access_token, body: { username: 'alice', password: PASSWORD } });
    assert.equal(created.status, 201);
    aliceId = created.body.id;
  });

  after(() => sortie?.cleanup());

  test('an expired access token is refused with 401 saying it expired', async () => {
    const alice = await login('alice', PASSWORD);
    const { sid, sub } = decodeJwt(alice.access_token);
    assert.equal(sub, aliceId);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ sid })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(aliceId)
      .setIssuer('sortie')
      .setAudience('sortie')
      .setIssuedAt(now - 3600)
      .setExpirationTime(now - 60)
      .sign(new TextEncoder().encode(JWT_SECRET));
    assertError(await me(expired), 401, /expired/);
    // The same claims, still valid: proves it was the expiry that was refused, not the forgery.
    const fresh = await new SignJWT({ sid }).setProtectedHeader({ alg: 'HS256' }).setSubject(aliceId).setIssuer('sortie').setAudience('sortie').setExpirationTime(now + 60).sign(new TextEncoder().encode(JWT_SECRET));
    assert.equal((await me(fresh)).status, 200);
  });

  test('tampered, foreign and unsigned tokens are refused with 401', async () => {
    const alice = await login('alice', PASSWORD);
    assert.equal((await me(alice.access_token)).status, 200);
    const [header, payload, signature] = alice.access_token.split('.') as [string, string, string];

    // One character of the payload changed.
    const i = Math.floor(payload.length / 2);
    const flipped = `${header}.${payload.slice(0, i)}${payload[i] === 'A' ? 'B' : 'A'}${payload.slice(i + 1)}.${signature}`;
    assertError(await me(flipped), 401, /not valid/);

    // A well-formed payload claiming to be the admin, under alice's signature.
    const claims = { ...decodeJwt(alice.access_token), sub: admin.user.id, sid: decodeJwt(admin.access_token).sid };
    const escalated = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    assertError(await me(escalated), 401, /not valid/);
    assertError(await call('GET', '/api/admin/users', { token: escalated }), 401);

    // Signed with a key that is not Sortie's.
    const sid = decodeJwt(alice.access_token).sid as string;
    const foreign = await new SignJWT({ sid })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(aliceId)
      .setIssuer('sortie')
      .setAudience('sortie')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('some-other-secret-0123456789abcdefghijkl'));
    assertError(await me(foreign), 401, /not valid/);

    // "alg": "none", no signature at all.
    const unsigned = new UnsecuredJWT({ sid }).setSubject(aliceId).setIssuer('sortie').setAudience('sortie').setExpirationTime('5m').encode();
    assert.match(unsigned, /\.$/);
    assertError(await me(unsigned), 401, /not valid/);
    assertError(await me(`${unsigned}${signature}`), 401, /not valid/);
  });

  test('after sign-out the access token and the refresh token are refused', async () => {
    const alice = await login('alice', PASSWORD);
    const out = await call('POST', '/api/auth/logout', { token: alice.access_token });
    assert.equal(out.status, 204);
    // The browser is told to forget both cookies.
    const cleared = setCookies(out);
    assert.ok(cleared.some((c) => /^sortie_access=;/.test(c)), cleared.join(' | '));
    assert.ok(cleared.some((c) => /^sortie_refresh=;/.test(c)), cleared.join(' | '));

    assertError(await me(alice.access_token), 401, /ended/);
    assertError(await call('GET', '/api/sessions', { token: alice.access_token }), 401);
    assertError(await refresh(alice.refresh_token), 401);
    assertError(await call('POST', '/api/auth/logout', { token: alice.access_token }), 401);
  });

  test('refreshing rotates: the new tokens work and the old refresh token works only once', async () => {
    const first = await login('alice', PASSWORD);
    const second = await refresh(first.refresh_token);
    assert.equal(second.status, 200);
    assert.notEqual(second.body.refresh_token, first.refresh_token);
    assert.equal(second.body.user.id, aliceId);
    assert.equal((await me(second.body.access_token)).body.user.username, 'alice');
    assertError(await refresh(first.refresh_token), 401, /refresh token/);

    // The browser's way: the refresh cookie, which login scoped to /api/auth.
    const third = await call<Tokens>('POST', '/api/auth/refresh', { headers: { cookie: `sortie_refresh=${second.body.refresh_token}` } });
    assert.equal(third.status, 200);
    assert.ok(setCookies(third).some((c) => c.startsWith(`sortie_access=${third.body.access_token};`)));
    assertError(await call('POST', '/api/auth/refresh', { headers: { cookie: `sortie_refresh=${second.body.refresh_token}` } }), 401);
    assertError(await refresh('not-a-refresh-token'), 401);
    assertError(await call('POST', '/api/auth/refresh'), 401, /sign in/);
  });

  test("disabling a user ends their sign-ins at once; enabling them again does not revive them", async () => {
    const alice = await login('alice', PASSWORD);
    assert.equal((await me(alice.access_token)).status, 200);
    const disabled = await call<{ disabled: boolean }>('PATCH', `/api/admin/users/${aliceId}`, { token: admin.access_token, body: { disabled: true } });
    assert.deepEqual([disabled.status, disabled.body.disabled], [200, true]);
    assertError(await me(alice.access_token), 401);
    assertError(await refresh(alice.refresh_token), 401);
    // Told apart from a wrong password by nobody, so the answer does not confirm the password.
    assertError(await call('POST', '/api/auth/login', { body: { username: 'alice', password: PASSWORD } }), 401, /^Wrong username or password$/);

    assert.equal((await call('PATCH', `/api/admin/users/${aliceId}`, { token: admin.access_token, body: { disabled: false } })).status, 200);
    assertError(await me(alice.access_token), 401);
    const again = await login('alice', PASSWORD);
    assert.equal((await me(again.access_token)).status, 200);
  });

  test("a new password ends the user's other sign-ins", async () => {
    // An admin resets alice's password: both of alice's sign-ins end, the admin's goes on.
    const laptop = await login('alice', PASSWORD);
    const phone = await login('alice', PASSWORD);
    const newPassword = `${PASSWORD}-changed`;
    const changed = await call('PATCH', `/api/admin/users/${aliceId}`, { token: admin.access_token, body: { password: newPassword } });
    assert.equal(changed.status, 200);
    assert.ok(!JSON.stringify(changed.body).includes('password'), 'the answer carries no password or hash');
    for (const signIn of [laptop, phone]) {
      assertError(await me(signIn.access_token), 401);
      assertError(await refresh(signIn.refresh_token), 401);
    }
    assertError(await call('POST', '/api/auth/login', { body: { username: 'alice', password: PASSWORD } }), 401, /Wrong username or password/);
    await login('alice', newPassword);
    assert.equal((await me(admin.access_token)).status, 200);
    assert.equal((await call('PATCH', `/api/admin/users/${aliceId}`, { token: admin.access_token, body: { password: PASSWORD } })).status, 200);

    // An admin changing their own password stays signed in where they did it; elsewhere they are signed out.
    const here = await login('admin', ADMIN_PASSWORD);
    const elsewhere = await login('admin', ADMIN_PASSWORD);
    const own = await call('PATCH', `/api/admin/users/${here.user.id}`, { token: here.access_token, body: { password: `${ADMIN_PASSWORD}-new` } });
    assert.equal(own.status, 200);
    assertError(await me(elsewhere.access_token), 401);
    assertError(await refresh(elsewhere.refresh_token), 401);
    assert.equal((await me(here.access_token)).status, 200, 'the sign-in that changed the password goes on');
    assert.equal((await refresh(here.refresh_token)).status, 200);
    // Put it back for the other tests (the admin token they use was also ended above).
    assert.equal((await call('PATCH', `/api/admin/users/${here.user.id}`, { token: here.access_token, body: { password: ADMIN_PASSWORD } })).status, 200);
    admin = await login('admin', ADMIN_PASSWORD);
  });

  test('a wrong password and an unknown user get the same 401', async () => {
    const wrong = await call<ErrorBody>('POST', '/api/auth/login', { body: { username: 'alice', password: 'not-her-password-at-all' } });
    const unknown = await call<ErrorBody>('POST', '/api/auth/login', { body: { username: 'nobody-by-this-name', password: 'not-her-password-at-all' } });
    assertError(wrong, 401);
    assert.deepEqual(wrong.body, unknown.body);
    assert.deepEqual(wrong.body, { error: 'unauthorized', message: 'Wrong username or password' });
    assert.equal(setCookies(wrong).length, 0, 'no cookies for a failed sign-in');
    assertError(await call('POST', '/api/auth/login', { body: { username: 'alice' } }), 400, /password/);
  });

  test('login sets HttpOnly, SameSite=Lax cookies that authenticate the browser', async () => {
    const res = await call<Tokens>('POST', '/api/auth/login', { body: { username: 'alice', password: PASSWORD } });
    assert.equal(res.status, 200);
    const cookies = setCookies(res);
    const access = cookies.find((c) => c.startsWith('sortie_access='));
    const refreshCookie = cookies.find((c) => c.startsWith('sortie_refresh='));
    assert.ok(access && refreshCookie, cookies.join(' | '));
    for (const cookie of [access, refreshCookie]) {
      assert.match(cookie, /; HttpOnly/i, cookie);
      assert.match(cookie, /; SameSite=Lax/i, cookie);
      assert.match(cookie, /; Expires=/i, cookie);
    }
    assert.match(access, /; Path=\/(;|$)/);
    assert.match(refreshCookie, /; Path=\/api\/auth(;|$)/, 'the refresh token only travels to the auth routes');
    assert.equal(access.split(';')[0], `sortie_access=${res.body.access_token}`);
    const viaCookie = await call<{ user: { username: string } }>('GET', '/api/auth/me', { headers: { cookie: access.split(';')[0]! } });
    assert.equal(viaCookie.body.user.username, 'alice');
    assert.ok(Date.parse(res.body.expires_at) > Date.now());
  });

  test('admin mistakes are refused with a status and a message that says what is wrong', async () => {
    const token = admin.access_token;
    assertError(await call('POST', '/api/admin/users', { token, body: { username: 'shorty', password: 'short' } }), 400, /password must be at least 12 characters/);
    assertError(await call('PATCH', `/api/admin/users/${aliceId}`, { token, body: { password: 'short' } }), 400, /at least 12 characters/);
    assertError(await call('POST', '/api/admin/users', { token, body: { username: 'no spaces allowed', password: PASSWORD } }), 400, /field "username"/);
    assertError(await call('POST', '/api/admin/users', { token, body: { username: 'alice', password: PASSWORD } }), 409, /"alice" already exists/);
    assertError(await call('DELETE', `/api/admin/users/${admin.user.id}`, { token }), 409, /your own account/);
    assertError(await call('PATCH', `/api/admin/users/${admin.user.id}`, { token, body: { role: 'user' } }), 409, /at least one enabled admin/);
    assertError(await call('PATCH', `/api/admin/users/${admin.user.id}`, { token, body: { disabled: true } }), 409);
    assertError(await call('PATCH', `/api/admin/users/00000000-0000-0000-0000-000000000000`, { token, body: { role: 'user' } }), 404);
    assertError(await call('PATCH', `/api/admin/users/${aliceId}`, { token, body: { role: 'superuser' } }), 400, /field "role"/);

    // With a second admin the first can be demoted; the one left cannot.
    const second = await call<{ id: string }>('POST', '/api/admin/users', { token, body: { username: 'second-admin', password: PASSWORD, role: 'admin' } });
    assert.equal(second.status, 201);
    const secondToken = (await login('second-admin', PASSWORD)).access_token;
    assert.equal((await call('PATCH', `/api/admin/users/${admin.user.id}`, { token: secondToken, body: { role: 'user' } })).status, 200);
    assertError(await call('GET', '/api/admin/users', { token }), 403);
    assertError(await call('PATCH', `/api/admin/users/${second.body.id}`, { token: secondToken, body: { role: 'user' } }), 409, /at least one enabled admin/);
    assertError(await call('DELETE', `/api/admin/users/${second.body.id}`, { token: secondToken }), 409);
    assert.equal((await call('PATCH', `/api/admin/users/${admin.user.id}`, { token: secondToken, body: { role: 'admin' } })).status, 200);
    assert.equal((await call('DELETE', `/api/admin/users/${second.body.id}`, { token })).status, 204);
    assertError(await me(secondToken), 401);

    // The catalog: bad definitions name the field; an id is taken once.
    const app = { id: 'extra', name: 'Extra', launch_type: 'container', command: ['xeyes'] };
    assertError(await call('POST', '/api/apps', { token, body: { ...app, id: 'Not An Id!' } }), 400, /field "id"/);
    assertError(await call('POST', '/api/apps', { token, body: { ...app, name: undefined } }), 400, /field "name"/);
    assertError(await call('POST', '/api/apps', { token, body: { ...app, visibility: 'secret' } }), 400, /field "visibility"/);
    assertError(await call('POST', '/api/apps', { token, body: { ...app, resource_limits: { cpu_limit: 'lots' } } }), 400, /field "resource_limits.cpu_limit"/);
    assertError(await call('POST', '/api/apps', { token, body: { ...app, id: 'xterm' } }), 409, /"xterm" already exists/);
    assert.equal((await call('POST', '/api/apps', { token, body: app })).status, 201);
    assertError(await call('POST', '/api/apps', { token, body: app }), 409);
    assertError(await call('PUT', '/api/apps/extra', { token, body: { ...app, id: 'renamed' } }), 400, /field "id"/);
    assertError(await call('PUT', '/api/apps/no-such-app', { token, body: { ...app, id: 'no-such-app' } }), 404);
    assert.equal((await call('DELETE', '/api/apps/extra', { token })).status, 204);
    assertError(await call('DELETE', '/api/apps/extra', { token }), 404);
  });
});

describe('the first admin', () => {
  test('comes from SORTIE_ADMIN_USERNAME/PASSWORD on the first start only; tokens survive a restart', async () => {
    // No SORTIE_JWT_SECRET: the generated key is kept, so a restart does not sign people out.
    const env = { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_USERNAME: 'root', SORTIE_ADMIN_PASSWORD: 'first-start-password' };
    const first = await startTestSortie({ name: 'auth-bootstrap', env });
    try {
      let token: string;
      try {
        const call = client(first.api);
        const signedIn = await call<Tokens>('POST', '/api/auth/login', { body: { username: 'root', password: 'first-start-password' } });
        assert.equal(signedIn.status, 200);
        assert.equal(signedIn.body.user.role, 'admin');
        token = signedIn.body.access_token;
        const users = await call<{ users: Array<{ username: string; role: string }> }>('GET', '/api/admin/users', { token });
        assert.deepEqual(users.body.users.map((u) => [u.username, u.role]), [['root', 'admin']]);
        assertError(await call('POST', '/api/auth/login', { body: { username: 'admin', password: 'first-start-password' } }), 401);
      } finally {
        await first.stop();
      }

      const second = await startTestSortie({ name: 'auth-bootstrap', dir: first.dir, env: { ...env, SORTIE_ADMIN_PASSWORD: 'second-start-password' } });
      try {
        const call = client(second.api);
        assertError(await call('POST', '/api/auth/login', { body: { username: 'root', password: 'second-start-password' } }), 401);
        assert.equal((await call('POST', '/api/auth/login', { body: { username: 'root', password: 'first-start-password' } })).status, 200);
        const users = await call<{ users: unknown[] }>('GET', '/api/admin/users', { token });
        assert.equal(users.status, 200, 'the token from before the restart still works');
        assert.equal(users.body.users.length, 1);
      } finally {
        await second.cleanup();
      }
    } finally {
      await first.cleanup();
    }
  });

  test('without SORTIE_ADMIN_PASSWORD gets a generated password, logged once', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const env = { SORTIE_AUTH: 'enabled' };
    const first = await startTestSortie({ name: 'auth-generated', env, logger });
    try {
      let password: string;
      try {
        const withPassword = lines.filter((l) => typeof l.password === 'string');
        assert.equal(withPassword.length, 1, 'one log line holds the password');
        assert.equal(withPassword[0]!.username, 'admin');
        assert.match(String(withPassword[0]!.msg), /generated password/);
        password = withPassword[0]!.password as string;
        assert.ok(password.length >= 12, 'as long as a chosen one must be');
        const res = await client(first.api)<Tokens>('POST', '/api/auth/login', { body: { username: 'admin', password } });
        assert.deepEqual([res.status, res.body.user.role], [200, 'admin']);
      } finally {
        await first.stop();
      }

      lines.length = 0;
      const second = await startTestSortie({ name: 'auth-generated', dir: first.dir, env, logger });
      try {
        assert.ok(lines.length > 0, 'the second start logs too');
        assert.ok(!lines.some((l) => JSON.stringify(l).includes(password)), 'but not the password again');
        assert.equal((await client(second.api)('POST', '/api/auth/login', { body: { username: 'admin', password } })).status, 200);
      } finally {
        await second.cleanup();
      }
    } finally {
      await first.cleanup();
    }
  });
});

describe('with SORTIE_AUTH=disabled', () => {
  let sortie: TestSortie;
  let call: ReturnType<typeof client>;

  before(async () => {
    sortie = await startTestSortie({ name: 'auth-disabled', env: { SORTIE_AUTH: 'disabled' }, apps: APPS });
    call = client(sortie.api);
  });

  // Ends any session a failed test left behind (sessions outlive Sortie by design).
  after(() => sortie?.cleanup());

  test('/api/auth/config says sign-in is off, and every route works without a token', async () => {
    const config = await call<{ enabled: boolean; oidc: { enabled: boolean } }>('GET', '/api/auth/config');
    assert.equal(config.status, 200);
    assert.equal(config.body.enabled, false);
    assert.equal(config.body.oidc.enabled, false);
    const who = await call<{ user: { role: string }; auth_enabled: boolean }>('GET', '/api/auth/me');
    assert.deepEqual([who.status, who.body.user.role, who.body.auth_enabled], [200, 'admin', false]);

    const apps = await call<{ applications: Array<{ id: string }> }>('GET', '/api/apps');
    assert.deepEqual(apps.body.applications.map((a) => a.id).sort(), ['xclock', 'xterm'], 'everyone is an admin: admin-only apps too');
    const app = { id: 'extra', name: 'Extra', launch_type: 'container', command: ['xeyes'] };
    assert.equal((await call('POST', '/api/apps', { body: app })).status, 201);
    assert.equal((await call('PUT', '/api/apps/extra', { body: { ...app, name: 'Extra 2' } })).status, 200);
    assert.equal((await call('DELETE', '/api/apps/extra')).status, 204);

    assert.equal((await call('GET', '/api/admin/users')).status, 200);
    const user = await call<{ id: string }>('POST', '/api/admin/users', { body: { username: 'dave', password: PASSWORD } });
    assert.equal(user.status, 201);
    assert.equal((await call('PATCH', `/api/admin/users/${user.body.id}`, { body: { display_name: 'Dave' } })).status, 200);
    assert.equal((await call('PUT', `/api/admin/users/${user.body.id}/approvals`, { body: { categories: ['Other'] } })).status, 200);
    assert.equal((await call('GET', `/api/admin/users/${user.body.id}/approvals`)).status, 200);
    assert.equal((await call('DELETE', `/api/admin/users/${user.body.id}`)).status, 204);

    const session = await call<Session>('POST', '/api/sessions', { body: { app_id: 'xclock', user_id: 'someone' } });
    assert.deepEqual([session.status, session.body.user_id], [201, 'someone']);
    let ended: Reply<Session>;
    try {
      assert.equal((await call('GET', '/api/sessions')).status, 200);
      const running = await sortie.api.waitFor(session.body.id, 'running');
      assert.equal(running.user_id, 'someone', 'it runs as the user it was launched for');
      const { viewer, desktop } = await sortie.openStream(session.body.id);
      viewer.close();
      assert.equal(desktop.banner, 'RFB 003.008', 'the stream opens without a token too');
    } finally {
      // Ended whatever happened above; checked after, so a failure above is the one reported.
      ended = await call<Session>('DELETE', `/api/sessions/${session.body.id}`);
    }
    assert.deepEqual([ended.status, ended.body.status], [200, 'terminated']);
    assert.equal((await call('POST', '/api/auth/logout')).status, 204);
    assert.equal((await call('GET', '/healthz')).status, 200);
  });
});
