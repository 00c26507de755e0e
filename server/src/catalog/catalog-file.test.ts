import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../errors.js';
import { DEFAULT_RESOURCE_LIMITS } from './app.js';
import { readCatalogFile } from './catalog-file.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sortie-catalog-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function fileWith(content: unknown): string {
  const file = path.join(dir, `apps-${n++}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const firefox = {
  id: 'firefox',
  name: 'Firefox Browser',
  description: 'Firefox web browser in a container',
  url: '',
  icon: 'https://example.com/firefox.png',
  category: 'Browsers',
  visibility: 'public',
  launch_type: 'container',
  container_image: 'ghcr.io/yourorg/firefox-desktop:latest',
};

function assertConfigError(file: string, ...fragments: string[]): void {
  assert.throws(
    () => readCatalogFile(file),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      for (const fragment of [file, ...fragments]) assert.ok(err.message.includes(fragment), `"${err.message}" lacks "${fragment}"`);
      return true;
    },
  );
}

test("reads the seed's example and fills the seed's default resource limits", () => {
  const [app] = readCatalogFile(fileWith({ applications: [firefox] }));
  assert.equal(app!.id, 'firefox');
  assert.equal(app!.container_image, 'ghcr.io/yourorg/firefox-desktop:latest');
  assert.deepEqual(app!.resource_limits, { cpu_request: '500m', cpu_limit: '2', memory_request: '512Mi', memory_limit: '2Gi' });
  assert.deepEqual(DEFAULT_RESOURCE_LIMITS, app!.resource_limits);
});

test('keeps given limits and defaults only the missing ones', () => {
  const [app] = readCatalogFile(fileWith({ applications: [{ ...firefox, resource_limits: { memory_request: '1Gi', memory_limit: '4Gi' } }] }));
  assert.deepEqual(app!.resource_limits, { cpu_request: '500m', cpu_limit: '2', memory_request: '1Gi', memory_limit: '4Gi' });
});

test('keeps an app command (argv)', () => {
  const [app] = readCatalogFile(fileWith({ applications: [{ ...firefox, command: ['firefox', '--kiosk'] }] }));
  assert.deepEqual(app!.command, ['firefox', '--kiosk']);
});

test('the shipped demo catalog loads', () => {
  const apps = readCatalogFile(path.resolve(import.meta.dirname, '../../../examples/apps.json'));
  const runnable = apps.filter((a) => a.launch_type === 'container' && a.command);
  assert.ok(runnable.length >= 2, 'at least two runnable desktop apps');
});

test('a bad quantity names the file, the app and the field', () => {
  assertConfigError(fileWith({ applications: [{ ...firefox, resource_limits: { cpu_limit: '2 cores' } }] }), '"firefox"', 'resource_limits.cpu_limit', 'CPU quantity');
});

test('a request above its limit is refused', () => {
  assertConfigError(fileWith({ applications: [{ ...firefox, resource_limits: { memory_request: '4Gi', memory_limit: '1Gi' } }] }), 'memory_request', 'more than memory_limit');
});

test('a missing field names the app by position when it has no id', () => {
  const { id: _id, ...noId } = firefox;
  assertConfigError(fileWith({ applications: [firefox, noId] }), '#2', 'id');
});

test('wrong visibility and launch_type are refused', () => {
  assertConfigError(fileWith({ applications: [{ ...firefox, visibility: 'everyone' }] }), 'visibility');
  assertConfigError(fileWith({ applications: [{ ...firefox, launch_type: 'vm' }] }), 'launch_type');
});

test('a container app without image or command, and a url app without url, are refused', () => {
  assertConfigError(fileWith({ applications: [{ ...firefox, container_image: '' }] }), 'container_image');
  assertConfigError(fileWith({ applications: [{ ...firefox, launch_type: 'url', url: '' }] }), 'url');
});

test('duplicate ids, bad JSON, a missing file and a wrong top level are refused', () => {
  assertConfigError(fileWith({ applications: [firefox, firefox] }), 'id is used by an earlier app');
  assertConfigError(fileWith('{"applications": ['), 'Cannot read catalog');
  assertConfigError(path.join(dir, 'missing.json'), 'Cannot read catalog');
  assertConfigError(fileWith({ apps: [] }), '"applications" array');
});

test('ids that could not be a label or URL segment are refused', () => {
  assertConfigError(fileWith({ applications: [{ ...firefox, id: 'Fire Fox' }] }), 'field "id"');
});

test('keeps max_sessions, and an app without it has no per-app limit', () => {
  const [limited, open] = readCatalogFile(fileWith({ applications: [{ ...firefox, max_sessions: 2 }, { ...firefox, id: 'other' }] }));
  assert.equal(limited!.max_sessions, 2);
  assert.equal(open!.max_sessions, undefined);
});

test('a max_sessions that is not a whole number of at least 1 stops start-up, naming the field', () => {
  for (const bad of [0, -1, 1.5, '2', null]) {
    assertConfigError(fileWith({ applications: [{ ...firefox, max_sessions: bad }] }), '"firefox"', 'field "max_sessions"', 'whole number');
  }
});

test('warm_pool: absent is none; a whole number up to 20 is kept; more, a fraction, a link or a kept home stops start-up, naming the field', () => {
  const [none, pooled] = readCatalogFile(fileWith({ applications: [firefox, { ...firefox, id: 'pooled', warm_pool: 3 }] }));
  assert.equal(none!.warm_pool ?? 0, 0);
  assert.equal(pooled!.warm_pool, 3);
  for (const bad of [21, -1, 1.5, '2']) assertConfigError(fileWith({ applications: [{ ...firefox, warm_pool: bad }] }), '"firefox"', 'field "warm_pool"');
  assertConfigError(fileWith({ applications: [{ ...firefox, warm_pool: 1, persistent_home: true }] }), 'field "warm_pool"', 'persistent_home', 'at pod creation on Kubernetes');
  assertConfigError(fileWith({ applications: [{ ...firefox, launch_type: 'url', url: 'https://example.com', warm_pool: 1 }] }), 'field "warm_pool"', 'link');
});
