import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.js';
import type { RouteInfo } from '../src/http/access-gate.js';
import { CloseCode } from '../src/stream/close-codes.js';
import type { Reply } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';

// Access is decided by the route that matched, for every registered route, however its
// path is spelled. The routes come from the running server, so a route added later is
// walked here too (and one without an access decision stops Sortie from starting).

const ADMIN_PASSWORD = 'route-access-admin-pw-1';
const USER_PASSWORD = 'route-access-user-pw-1';
const METRICS_TOKEN = 'route-access-metrics-token-1';

let sortie: TestSortie;

/** A request whose path goes out byte for byte (fetch would normalise some spellings). */
const raw = (method: string, rawPath: string, headers: Record<string, string> = {}): Promise<Reply> => sortie.api.request(method, rawPath, undefined, headers);

/** A concrete path for a route pattern: every parameter becomes an id that exists nowhere. */
function concrete(url: string): string {
  return url.replace(/:[A-Za-z_]+/g, 'no-such-id');
}

/**
 * The same route, spelled the ways an attacker would try: percent-encoded letters (the
 * router decodes them), doubled slashes, a trailing dot or slash, other letter case.
 */
function variants(urlPath: string): string[] {
  const segments = urlPath.split('/');
  const encodeFirst = (s: string) => (s ? `%${s.charCodeAt(0).toString(16)}${s.slice(1)}` : s);
  return [
    segments.map((s, i) => (i === 1 ? encodeFirst(s) : s)).join('/'),
    segments.map(encodeFirst).join('/'),
    `/${urlPath}`,
    urlPath.replace(/\/([^/]+)$/, '//$1'),
    `${urlPath}.`,
    `${urlPath}/`,
    urlPath.toUpperCase(),
    `${urlPath}%2f`,
  ];
}

describe('every route declares and enforces its access', () => {
  let routes: RouteInfo[];
  const token: Record<'user' | 'admin', string> = { user: '', admin: '' };
  const bearer = (who: 'user' | 'admin') => ({ authorization: `Bearer ${token[who]}` });

  before(async () => {
    sortie = await startTestSortie({
      name: 'route-access',
      env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD, SORTIE_METRICS_TOKEN: METRICS_TOKEN },
    });
    const signIn = async (username: string, password: string) => {
      const res = await sortie.api.signIn(username, password);
      assert.equal(res.status, 200);
      return res.body.access_token;
    };
    token.admin = await signIn('admin', ADMIN_PASSWORD);
    const created = await sortie.api.as(token.admin).request('POST', '/api/admin/users', { username: 'walker', password: USER_PASSWORD });
    assert.equal(created.status, 201);
    token.user = await signIn('walker', USER_PASSWORD);
    // Sign-out last: it ends the sign-in the later requests use.
    routes = sortie.sortie.routes().sort((a, b) => Number(a.url === '/api/auth/logout') - Number(b.url === '/api/auth/logout'));
  });

  after(() => sortie?.cleanup());

  test('the server registers the API, health and UI routes, each with a decision', () => {
    const names = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const expected of ['GET /api/admin/users', 'POST /api/apps', 'DELETE /api/sessions/:id', 'GET /healthz', 'POST /api/auth/login', 'HEAD /api/sessions', 'GET /metrics']) {
      assert.ok(names.has(expected), `${expected} is registered (have ${[...names].join(', ')})`);
    }
    for (const route of routes) assert.ok(['public', 'user', 'admin', 'metrics'].includes(route.access ?? ''), `${route.method} ${route.url}: ${route.access}`);
    assert.ok(routes.some((r) => r.url === '/' || r.url === '/index.html'), 'the UI files are routes too');
  });

  test('anonymous callers reach only public routes', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      const res = await raw(route.method, concrete(route.url));
      // The gate's refusal; a public route may still answer 401 for its own reasons (a bad refresh token).
      const refusal = route.access === 'metrics' ? 'SORTIE_METRICS_TOKEN' : 'Sign in to use Sortie';
      const refused = res.status === 401 && (route.method === 'HEAD' || res.text.includes(refusal));
      if (route.access === 'public' ? refused : !refused) wrong.push(`${route.method} ${route.url} (${route.access}): ${res.status}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('signed-in users reach user routes and are refused admin routes', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      if (route.access === 'public') continue;
      const res = await raw(route.method, concrete(route.url), bearer('user'));
      // A user's sign-in is not the metrics scraper's token.
      const expected = route.access === 'admin' ? [403] : route.access === 'metrics' ? [401] : [200, 201, 204, 400, 404, 409];
      if (!expected.includes(res.status)) wrong.push(`${route.method} ${route.url} (${route.access}) as user: ${res.status} ${res.text.slice(0, 120)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('admins reach admin routes', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      if (route.access !== 'admin') continue;
      const res = await raw(route.method, concrete(route.url), bearer('admin'));
      if ([401, 403].includes(res.status)) wrong.push(`${route.method} ${route.url} as admin: ${res.status}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('the metrics token opens /metrics and nothing else', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      if (route.access === 'public') continue;
      const res = await raw(route.method, concrete(route.url), { authorization: `Bearer ${METRICS_TOKEN}` });
      const served = ![401, 403].includes(res.status);
      if (served !== (route.access === 'metrics')) wrong.push(`${route.method} ${route.url} (${route.access}) with the metrics token: ${res.status}`);
    }
    assert.deepEqual(wrong, []);
    // And an admin's sign-in does not open /metrics: scrapers and people are kept apart.
    assert.equal((await raw('GET', '/metrics', bearer('admin'))).status, 401);
  });

  test('no other spelling of a protected path gets past the gate', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      if (route.access === 'public') continue;
      for (const variant of variants(concrete(route.url))) {
        for (const [who, headers] of [['anonymous', {}], ['user', route.access === 'admin' ? bearer('user') : null]] as const) {
          if (!headers) continue;
          const res = await raw(route.method, variant, headers);
          // Refused, or no such route; never served, and never a crash (500).
          const ok = [401, 403, 404, 405].includes(res.status);
          const json = res.headers['content-type']?.startsWith('application/json');
          if (!ok || !json) wrong.push(`${route.method} ${variant} as ${who}: ${res.status} ${res.headers['content-type']}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('HEAD and OPTIONS of protected paths answer nothing to anonymous callers', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      if (route.access === 'public') continue;
      for (const method of ['HEAD', 'OPTIONS']) {
        const res = await raw(method, concrete(route.url));
        if (![401, 405].includes(res.status) || res.text.includes('walker')) wrong.push(`${method} ${route.url}: ${res.status}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('a known path asked with the wrong method answers 405 with Allow', async () => {
    const res = await raw('PATCH', '/api/sessions', bearer('user'));
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET, HEAD, POST');
    const body = JSON.parse(res.text) as { error: string; message: string };
    assert.equal(body.error, 'method_not_allowed');
    assert.match(body.message, /accepts GET, HEAD, POST/);
    assert.equal((await raw('PATCH', '/api/nothing-here', bearer('user'))).status, 404);
  });

  test('every response carries the security headers', async () => {
    for (const urlPath of ['/', '/api/auth/config', '/api/admin/users', '/sessions/deep-link']) {
      const res = await raw('GET', urlPath);
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /frame-ancestors 'none'/, `${urlPath}: ${csp}`);
      assert.match(csp, /script-src 'self'/, urlPath);
      assert.match(csp, /object-src 'none'/, urlPath);
      assert.equal(res.headers['x-frame-options'], 'DENY', urlPath);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', urlPath);
      assert.equal(res.headers['referrer-policy'], 'no-referrer', urlPath);
    }
  });

  test('a page the UI routes itself loads the UI; an API-looking spelling does not', async () => {
    const page = await raw('GET', '/sessions/deep-link');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    for (const apiLike of ['//api/admin/users', '/%61pi/admin/users.', '/API//admin/users']) {
      const res = await raw('GET', apiLike);
      assert.notEqual(res.status, 200, apiLike);
      assert.doesNotMatch(String(res.headers['content-type']), /text\/html/, apiLike);
    }
  });
});

describe('with sign-in off, only this server\'s host names are answered (DNS rebinding)', () => {
  before(async () => {
    sortie = await startTestSortie({ name: 'route-access-open', env: { SORTIE_AUTH: 'disabled' } });
  });

  after(() => sortie?.cleanup());

  test('a foreign Host with a matching Origin cannot create an app', async () => {
    const port = new URL(sortie.url).port;
    const evil = `rebind.example:${port}`;
    const pwned = { id: 'pwned', name: 'Pwned', launch_type: 'container', command: ['id'] };
    const res = await sortie.api.request('POST', '/api/apps', pwned, { host: evil, origin: `http://${evil}` });
    assert.equal(res.status, 403);
    assert.match(res.text, /SORTIE_PUBLIC_URL/);
    const apps = (await sortie.api.request<{ applications: Array<{ id: string }> }>('GET', '/api/apps')).body;
    assert.ok(!apps.applications.some((a) => a.id === 'pwned'));
    // Reading is refused too: the page would otherwise read sessions and apps.
    assert.equal((await raw('GET', '/api/sessions', { host: evil })).status, 403);
    assert.equal((await raw('GET', '/api/sessions', { host: `localhost:${port}` })).status, 200);
  });

  test('a stream opened under a foreign Host is refused with 4403', async () => {
    const port = new URL(sortie.url).port;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/sessions/whatever`, { headers: { host: `rebind.example:${port}` } });
    const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    assert.equal(code, CloseCode.Forbidden);
  });

  test('it listens on 127.0.0.1 unless told otherwise', () => {
    assert.equal(loadConfig({ SORTIE_AUTH: 'disabled' }).host, '127.0.0.1');
    assert.equal(loadConfig({ SORTIE_AUTH: 'disabled', SORTIE_HOST: '0.0.0.0' }).host, '0.0.0.0');
    assert.equal(loadConfig({}).host, '0.0.0.0');
  });
});
