import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LAUNCH_STEPS, type LaunchStep, type Session } from '../../src/contract/sessions.js';
import { sleep } from '../support/wait.js';
import { DEMO_IMAGE, SMALL_LIMITS, startClusterDesk, waitForPodGone, type ClusterDesk } from './cluster.js';

// What a person waiting for a desktop is told, read from GET /api/sessions/{id} while a real
// pod starts: the steps come from the pod's own status as the runner's watch sees it.

const APPS = [{ id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: DEMO_IMAGE, command: ['xterm'], resource_limits: SMALL_LIMITS }];

let cluster: ClusterDesk;

before(async () => {
  cluster = await startClusterDesk({ name: 'progress', apps: APPS });
});

after(() => cluster?.cleanup());

test('a launch on a pod reports waiting for a node, then the app or the desktop starting, in order with times, then runs', async (t) => {
  const { api } = cluster.sortie;
  const postedAt = new Date().toISOString();
  const created = await api.launch('xterm', 'alice');
  assert.equal(created.status, 'creating');

  // Each answer holds the launch's whole history so far, so the last one before `running`
  // holds every step, however briefly a step lasted between two polls.
  let last: LaunchStep[] = [];
  let session: Session = created;
  const deadline = Date.now() + 90_000;
  while (session.status === 'creating' && Date.now() < deadline) {
    if (session.progress) last = session.progress;
    await sleep(20);
    session = await api.session(created.id);
  }
  assert.equal(session.status, 'running', session.reason ?? 'still creating');
  assert.equal(session.progress, null, 'a running session has no launch steps');
  t.diagnostic(`steps: ${last.map((s) => `${s.step} ${s.started_at}→${s.ended_at}`).join(', ')}`);

  const names = last.map((s) => s.step);
  assert.equal(names[0], 'scheduling', 'the pod first waits for a node');
  assert.ok(names.includes('starting') || names.includes('pulling'), `then its containers and desktop start: ${names.join(', ')}`);
  const order = names.map((n) => LAUNCH_STEPS.indexOf(n));
  assert.deepEqual(order, [...order].sort((a, b) => a - b), `steps in launch order, none repeated: ${names.join(', ')}`);
  assert.equal(new Set(names).size, names.length);
  for (const [i, step] of last.entries()) {
    assert.ok(step.started_at >= postedAt && step.started_at <= session.updated_at, `${step.step} began during the launch`);
    if (i > 0) assert.equal(step.started_at, last[i - 1]!.ended_at, `${last[i - 1]!.step} ended when ${step.step} began`);
  }
  // The last step seen may still have been under way at the last poll.
  assert.ok(last.slice(0, -1).every((s) => s.ended_at !== null));

  await api.end(created.id);
  await waitForPodGone(cluster.kc, cluster.namespace.name, created.pod_name);
});
