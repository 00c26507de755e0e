import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { UnauthorizedError } from '../errors.js';
import { ADMIN, installAccessGate, PUBLIC } from './access-gate.js';
import { HostPolicy } from './host-policy.js';
import { OriginPolicy } from './origin-policy.js';
import { RequestGate } from './request-gate.js';

const deps = new RequestGate({
  authn: {
    principalOf: async () => {
      throw new UnauthorizedError('Sign in to use Sortie');
    },
  },
  origins: new OriginPolicy(undefined, []),
  hosts: undefined,
});

test('a route that does not say who may call it stops the server from starting', async () => {
  const app = Fastify();
  installAccessGate(app, deps);
  app.get('/healthz', PUBLIC, async () => 'ok');
  app.get('/api/forgotten', async () => 'secret');
  app.post('/api/also-forgotten', { config: {} }, async () => 'secret');
  await assert.rejects(async () => app.ready(), /routes without an access decision.*GET \/api\/forgotten.*POST \/api\/also-forgotten/);
});

test('every route with a decision starts, and the table lists them with their access', async () => {
  const app = Fastify();
  const table = installAccessGate(app, deps);
  app.get('/healthz', PUBLIC, async () => 'ok');
  app.delete('/api/things/:id', ADMIN, async () => 'gone');
  await app.ready();
  assert.deepEqual(
    table.list().map((r) => `${r.method} ${r.url} ${r.access}`),
    ['GET /healthz public', 'HEAD /healthz public', 'DELETE /api/things/:id admin'],
  );
  assert.deepEqual(table.methodsAt('/api/things/42'), ['DELETE']);
  assert.deepEqual(table.methodsAt('/api/%74hings/42'), ['DELETE'], 'the router decodes, so the table does too');
  assert.deepEqual(table.methodsAt('/api/things'), []);
  await app.close();
});

test('host names: only this server\'s, with any port, case and trailing dot', () => {
  const hosts = new HostPolicy({ listenHost: '127.0.0.1', publicUrl: 'https://sortie.example.com', allowedOrigins: ['http://other.example:3000'] });
  for (const ok of ['localhost:8080', 'LOCALHOST', '127.0.0.1:1', '[::1]:8080', 'sortie.example.com', 'sortie.example.com.:443', 'other.example']) {
    assert.ok(hosts.allows(ok), ok);
  }
  for (const bad of [undefined, '', 'rebind.example:8080', 'localhost.rebind.example', '127.0.0.1.nip.example', '10.0.0.1']) {
    assert.ok(!hosts.allows(bad), String(bad));
  }
});
