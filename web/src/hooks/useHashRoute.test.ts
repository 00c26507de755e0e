import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHash, paths } from './useHashRoute';

test('each page has its hash, and every path leads back to its page', () => {
  assert.deepEqual(parseHash(''), { page: 'catalog' });
  assert.deepEqual(parseHash(paths.catalog), { page: 'catalog' });
  assert.deepEqual(parseHash('#/catalog/'), { page: 'catalog' });
  assert.deepEqual(parseHash(paths.sessions), { page: 'sessions' });
  assert.deepEqual(parseHash(paths.viewer('a b/c')), { page: 'viewer', sessionId: 'a b/c' });
  assert.deepEqual(parseHash('#/admin'), { page: 'admin', section: 'apps' });
  for (const section of ['apps', 'users', 'sessions'] as const) assert.deepEqual(parseHash(paths.admin(section)), { page: 'admin', section });
  assert.deepEqual(parseHash('#/signin?error=Access%20denied'), { page: 'signin', error: 'Access denied' });
  assert.deepEqual(parseHash(paths.signin), { page: 'signin', error: null });
});

test('anything else is a not-found page that names the path', () => {
  assert.deepEqual(parseHash('#/admin/secrets'), { page: 'not-found', path: '/admin/secrets' });
  assert.deepEqual(parseHash('#/sessions/a/b'), { page: 'not-found', path: '/sessions/a/b' });
});
