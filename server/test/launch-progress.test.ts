import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Session } from '../src/sessions/session.js';
import type { Api } from './support/api.js';
import { FakeRunner } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { waitFor } from './support/wait.js';

// A launch's steps, from the runner's progress events (and Sortie's own queue) to what
// GET /api/sessions/{id} and the list answer, through the real HTTP API, session service and
// SQLite file. The runner is the fake one, so the test says exactly when each step begins.

const APPS = [{ id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'] }];

let sortie: TestSortie;
let api: Api;
const runner = new FakeRunner({ events: 'manual' });

before(async () => {
  // One session at a time, so the second one waits in the queue.
  sortie = await startTestSortie({ name: 'launch-progress', apps: APPS, runner, env: { SORTIE_MAX_SESSIONS: '1' } });
  api = sortie.api;
});
after(() => sortie?.cleanup());

const steps = (s: Session) => s.progress?.map((p) => [p.step, p.label, p.ended_at === null ? 'under way' : 'done']) ?? null;

/** The session once its progress has `count` steps. */
const withSteps = (id: string, count: number) =>
  waitFor(async () => {
    const s = await api.session(id);
    return (s.progress?.length ?? 0) >= count ? s : undefined;
  }, { what: `${count} launch steps of ${id}` });

test('each step the runner reports is shown while creating, the one before it ends then, and none once running', async () => {
  const first = await api.launch('xterm', 'alice');
  assert.equal(first.status, 'creating');
  assert.deepEqual(first.progress, [], 'started at once: no queue step, and the runner has said nothing yet');

  const scheduledAt = new Date();
  runner.progress(first.id, 'scheduling', scheduledAt);
  const pulledAt = new Date(scheduledAt.getTime() + 1500);
  runner.progress(first.id, 'pulling', pulledAt);
  // The same step again is no news.
  runner.progress(first.id, 'pulling', new Date(pulledAt.getTime() + 500));
  const pulling = await withSteps(first.id, 2);
  assert.deepEqual(steps(pulling), [
    ['scheduling', 'Waiting for a node', 'done'],
    ['pulling', 'Preparing the app', 'under way'],
  ]);
  assert.equal(pulling.progress![0]!.started_at, scheduledAt.toISOString());
  assert.equal(pulling.progress![0]!.ended_at, pulledAt.toISOString());
  assert.equal(pulling.progress![1]!.started_at, pulledAt.toISOString());

  const listed = await api.request<{ sessions: Session[] }>('GET', '/api/sessions?user_id=alice');
  assert.deepEqual(listed.body.sessions.find((s) => s.id === first.id)?.progress, pulling.progress, 'the list shows the same steps');

  runner.progress(first.id, 'starting');
  await withSteps(first.id, 3);
  runner.ready(first.id);
  const running = await api.waitFor(first.id, 'running');
  assert.equal(running.progress, null, 'a running session has no launch steps');

  // Late news of an ended launch changes nothing.
  runner.progress(first.id, 'pulling');
  assert.equal((await api.session(first.id)).progress, null);
});

test("a session that waits in Sortie's queue shows that wait as its first step, ended when it starts", async () => {
  const [busy] = (await api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=running')).body.sessions;
  assert.ok(busy, 'the first test left a session running, which takes the only place');
  const waiting = await api.launch('xterm', 'alice');
  assert.equal(waiting.status, 'queued');
  assert.deepEqual(steps(waiting), [['queued', 'Waiting for room', 'under way']]);
  assert.equal(waiting.progress![0]!.started_at, waiting.created_at);

  await api.end(busy.id);
  const started = await api.waitFor(waiting.id, 'creating');
  assert.deepEqual(steps(started), [['queued', 'Waiting for room', 'done']]);
  runner.progress(waiting.id, 'scheduling');
  const scheduling = await withSteps(waiting.id, 2);
  assert.deepEqual(steps(scheduling), [
    ['queued', 'Waiting for room', 'done'],
    ['scheduling', 'Waiting for a node', 'under way'],
  ]);
  assert.ok(scheduling.progress![0]!.ended_at! <= scheduling.progress![1]!.started_at, 'the queue ended before the node wait began');

  runner.fail(waiting.id, 'No node can run this session: 0/1 nodes are available');
  const failed = await api.waitFor(waiting.id, 'failed');
  assert.equal(failed.progress, null, 'an ended session has no launch steps');
});
