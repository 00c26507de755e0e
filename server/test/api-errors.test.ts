import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Api } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';

// Every way a client can get a request wrong, against the real server and database.
let sortie: TestSortie;
let api: Api;

before(async () => {
  sortie = await startTestSortie({ name: 'api-errors' });
  api = sortie.api;
});

after(() => sortie?.cleanup());

type ErrorBody = { error: string; message: string };

async function expectError(res: Promise<{ status: number; body: unknown }>, status: number, fragment: string | RegExp): Promise<void> {
  const { status: got, body } = await res;
  assert.equal(got, status, `expected ${status}, got ${got}: ${JSON.stringify(body)}`);
  const error = body as ErrorBody;
  assert.equal(typeof error.error, 'string');
  assert.equal(typeof error.message, 'string');
  assert.match(error.message, typeof fragment === 'string' ? new RegExp(fragment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : fragment);
}

test('unknown app: 404 naming the app', async () => {
  await expectError(api.request('POST', '/api/sessions', { app_id: 'no-such-app' }), 404, 'No app with id "no-such-app"');
});

test('a url app: 400 saying it is a link', async () => {
  await expectError(api.request('POST', '/api/sessions', { app_id: 'sortie-docs' }), 400, 'launch_type "url"');
});

test('malformed JSON: 400', async () => {
  await expectError(api.request('POST', '/api/sessions', '{"app_id": "xterm"'), 400, 'not valid JSON');
});

test('oversized JSON: 400 with the limit', async () => {
  await expectError(api.request('POST', '/api/sessions', { app_id: 'xterm', padding: 'x'.repeat(64 * 1024) }), 400, /too large/);
});

test('missing, empty or wrongly typed fields: 400 naming the field', async () => {
  await expectError(api.request('POST', '/api/sessions', {}), 400, 'app_id');
  await expectError(api.request('POST', '/api/sessions', { app_id: '' }), 400, 'field "app_id" must not be empty');
  await expectError(api.request('POST', '/api/sessions', { app_id: 42 }), 400, 'app_id');
  await expectError(api.request('POST', '/api/sessions', { app_id: 'xterm', user_id: 'a b/c' }), 400, 'user_id');
  await expectError(api.request('POST', '/api/sessions', ['xterm']), 400, 'JSON object');
  await expectError(api.request('POST', '/api/sessions', 'null'), 400, /JSON object|body/);
});

test('a body that is not JSON: 4xx, not 500', async () => {
  const res = await api.request('POST', '/api/sessions', 'app_id=xterm', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(res.status, 415);
  assert.equal((res.body as ErrorBody).error, 'unsupported_media_type');
  const empty = await api.request('POST', '/api/sessions', '', { 'content-type': 'application/json' });
  assert.equal(empty.status, 400);
});

test('unknown session: 404 for get and delete', async () => {
  await expectError(api.request('GET', '/api/sessions/0b5a3c3e-0000-4000-8000-000000000000'), 404, 'No session with id');
  await expectError(api.request('DELETE', '/api/sessions/not-a-session'), 404, 'No session with id "not-a-session"');
});

test('bad list filters: 400', async () => {
  await expectError(api.request('GET', '/api/sessions?status=sleeping'), 400, 'status');
  await expectError(api.request('GET', '/api/sessions?user_id=%20'), 400, 'user_id');
});

test('unknown API route: JSON 404', async () => {
  await expectError(api.request('GET', '/api/nothing-here'), 404, 'No route for GET /api/nothing-here');
});

test('bad input creates nothing', async () => {
  const res = await api.request<{ sessions: unknown[] }>('GET', '/api/sessions');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.sessions, []);
});

test('the catalog lists the demo apps with their limits', async () => {
  const res = await api.request<{ applications: Array<{ id: string; resource_limits: Record<string, string> }> }>('GET', '/api/apps');
  assert.equal(res.status, 200);
  const ids = res.body.applications.map((a) => a.id);
  assert.ok(ids.includes('xterm') && ids.includes('xeyes'), ids.join(','));
  assert.equal(res.body.applications.find((a) => a.id === 'xclock')!.resource_limits.memory_limit, '2Gi');
});

test('health endpoints answer', async () => {
  assert.equal((await api.request('GET', '/healthz')).status, 200);
  assert.equal((await api.request('GET', '/readyz')).status, 200);
});
