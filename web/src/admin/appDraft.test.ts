import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { App } from '../contract';
import { fieldFromServerMessage, fromDraft, toDraft } from './appDraft';

const xterm: App = {
  id: 'xterm',
  name: 'XTerm',
  description: 'A terminal',
  url: '',
  icon: '',
  category: 'Development',
  visibility: 'approved',
  launch_type: 'container',
  container_image: '',
  command: ['xterm', '-title', 'My Term'],
  resource_limits: { cpu_request: '250m', cpu_limit: '1', memory_request: '256Mi', memory_limit: '1Gi' },
  max_sessions: 4,
  file_transfer: 'download',
  clipboard: 'from_session',
  persistent_home: true,
  warm_pool: 0,
};

test('an app survives a round trip through the form unchanged', () => {
  const draft = toDraft(xterm);
  assert.equal(draft.command, "xterm -title 'My Term'");
  assert.equal(draft.max_sessions, '4');
  const back = fromDraft(draft, false);
  assert.ok(back.ok);
  assert.deepEqual(back.app, { ...xterm });
});

test('warm_pool: empty is none, a whole number up to 20 is kept, and a kept home refuses a pool', () => {
  const fresh = { ...toDraft(xterm), persistent_home: false };
  const none = fromDraft({ ...fresh, warm_pool: '' }, false);
  assert.ok(none.ok && none.app.warm_pool === 0);
  const three = fromDraft({ ...fresh, warm_pool: '3' }, false);
  assert.ok(three.ok && three.app.warm_pool === 3);
  assert.equal(toDraft({ ...xterm, warm_pool: 3 }).warm_pool, '3');
  for (const bad of ['21', '-1', '1.5', 'some']) {
    const result = fromDraft({ ...fresh, warm_pool: bad }, false);
    assert.ok(!result.ok && /0 to 20/.test(result.errors.warm_pool!), bad);
  }
  const kept = fromDraft({ ...fresh, persistent_home: true, warm_pool: '2' }, false);
  assert.ok(!kept.ok && /own home/.test(kept.errors.warm_pool!));
});

test('a new app form starts empty, public and as a container', () => {
  const draft = toDraft(null);
  assert.equal(draft.id, '');
  assert.equal(draft.visibility, 'public');
  assert.equal(draft.launch_type, 'container');
  assert.equal(draft.cpu_limit, '');
  assert.equal(draft.file_transfer, 'both');
  assert.equal(draft.clipboard, 'both');
  assert.equal(draft.persistent_home, false, 'a fresh home per session unless asked');
});

test('a web link app never asks for a persistent home, whatever the box said', () => {
  const checked = fromDraft({ ...toDraft(null), id: 'docs', name: 'Docs', launch_type: 'url', url: 'https://example.com', persistent_home: true }, true);
  assert.ok(checked.ok);
  assert.equal(checked.app.persistent_home, false);
  const kept = fromDraft({ ...toDraft(xterm), persistent_home: false }, false);
  assert.ok(kept.ok);
  assert.equal(kept.app.persistent_home, false);
});

test('the file transfer setting goes to the server as chosen, for every choice', () => {
  for (const mode of ['both', 'upload', 'download', 'none'] as const) {
    const checked = fromDraft({ ...toDraft(xterm), file_transfer: mode }, false);
    assert.ok(checked.ok);
    assert.equal(checked.app.file_transfer, mode);
  }
  assert.equal(fieldFromServerMessage('field "file_transfer" must be "both", "upload", "download" or "none"'), 'file_transfer');
});

test('the clipboard setting goes to the server as chosen, for every choice', () => {
  for (const mode of ['both', 'to_session', 'from_session', 'none'] as const) {
    const checked = fromDraft({ ...toDraft(xterm), clipboard: mode }, false);
    assert.ok(checked.ok);
    assert.equal(checked.app.clipboard, mode);
  }
  assert.equal(fieldFromServerMessage('field "clipboard" must be "both", "to_session", "from_session" or "none"'), 'clipboard');
});

test('the form names each field a person must fix, in words', () => {
  const result = fromDraft({ ...toDraft(null), id: 'Not An Id', name: '  ', command: 'xterm "unclosed', max_sessions: '0' }, true);
  assert.ok(!result.ok);
  assert.match(result.errors.id!, /lowercase letters/);
  assert.equal(result.errors.name, 'Give the app a name.');
  assert.match(result.errors.command!, /unclosed double quote/);
  assert.match(result.errors.max_sessions!, /at least 1/);

  const noId = fromDraft({ ...toDraft(null), name: 'X' }, true);
  assert.ok(!noId.ok);
  assert.equal(noId.errors.id, 'Give the app an id.');
});

test('the id is checked against the contract pattern only when the app is new', () => {
  const editing = fromDraft({ ...toDraft(xterm), id: 'whatever it was' }, false);
  assert.ok(editing.ok);
  for (const id of ['a', 'my-app.2', 'x_y']) assert.ok(fromDraft({ ...toDraft(xterm), id }, true).ok, id);
  for (const id of ['-a', 'a-', 'A', 'a b', 'x'.repeat(64)]) assert.ok(!fromDraft({ ...toDraft(xterm), id }, true).ok, id);
});

test('a web link app sends only what a link needs; empty limits are left to the server', () => {
  const link = fromDraft({ ...toDraft(xterm), launch_type: 'url', url: ' https://example.com ', command: 'ignored', max_sessions: 'nonsense' }, false);
  assert.ok(link.ok);
  assert.equal(link.app.url, 'https://example.com');
  assert.equal(link.app.container_image, '');
  assert.equal(link.app.command, undefined);
  assert.equal(link.app.max_sessions, undefined);
  assert.equal(link.app.resource_limits, undefined);

  const noUrl = fromDraft({ ...toDraft(xterm), launch_type: 'url', url: ' ' }, false);
  assert.ok(!noUrl.ok);
  assert.match(noUrl.errors.url!, /address/);

  const partial = fromDraft({ ...toDraft(xterm), cpu_request: '', memory_limit: ' 3Gi ', category: ' ' }, false);
  assert.ok(partial.ok);
  assert.deepEqual(partial.app.resource_limits, { cpu_limit: '1', memory_request: '256Mi', memory_limit: '3Gi' });
  assert.equal(partial.app.category, undefined);
});

test("the server's complaint about a field lands on that field", () => {
  assert.equal(fieldFromServerMessage('field "resource_limits.cpu_limit" must be a Kubernetes CPU quantity'), 'cpu_limit');
  assert.equal(fieldFromServerMessage('Field "id" must be 1-63 lowercase letters'), 'id');
  assert.equal(fieldFromServerMessage('field "command.0" must not be empty'), 'command');
  assert.equal(fieldFromServerMessage('field "owner" is unknown'), null);
  assert.equal(fieldFromServerMessage('something else went wrong'), null);
});
