import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ConflictError, InputError } from '../../src/errors.js';
import type { KubernetesRunner } from '../../src/runners/kubernetes/kubernetes-runner.js';
import { adminKubeConfig, createTestNamespace, EventLog, launchSpec, makeRunner, readPod, testApp } from './cluster.js';
import { waitFor } from '../support/wait.js';

let kc: KubeConfig;
let namespace: { name: string; remove: () => Promise<void> };
let quotaNamespace: { name: string; remove: () => Promise<void> };
let runner: KubernetesRunner;
const events = new EventLog();

before(async () => {
  kc = await adminKubeConfig();
  namespace = await createTestNamespace(kc, 'failures');
  runner = makeRunner(kc, namespace.name);
  await runner.start(events.listener);
});

after(async () => {
  await runner?.close();
  await namespace?.remove();
  await quotaNamespace?.remove();
});

async function failureOf(spec: ReturnType<typeof launchSpec>, timeoutMs = 60_000): Promise<{ reason: string; ms: number }> {
  const started = Date.now();
  await runner.launch(spec);
  try {
    const { event, at } = await events.end(spec.sessionId, timeoutMs);
    assert.equal(event.type, 'failed', JSON.stringify(event));
    return { reason: (event as { reason: string }).reason, ms: at - started };
  } finally {
    await runner.stop(spec.sessionId);
  }
}

test('validate() refuses an app without a container image', () => {
  assert.throws(() => runner.validate(testApp({ container_image: '' })), InputError);
  assert.throws(() => runner.validate(testApp({ container_image: '   ' })), /no container_image/);
  runner.validate(testApp());
});

test('an image that is not on the node and cannot be pulled fails with the image named', async (t) => {
  // The node has no registry access, so IfNotPresent tries to pull and the pull fails.
  const { reason, ms } = await failureOf(launchSpec(testApp({ container_image: 'sortie-does-not-exist:v1' })));
  t.diagnostic(`failed after ${ms} ms: ${reason}`);
  assert.match(reason, /^Image "sortie-does-not-exist:v1" could not be pulled: /);
});

test('no node with room: the scheduler message reaches the user', async () => {
  const spec = launchSpec(testApp({ resource_limits: { cpu_request: '64', cpu_limit: '64', memory_request: '64Mi', memory_limit: '512Mi' } }));
  const { reason } = await failureOf(spec);
  assert.match(reason, /^No node can run this session: 0\/1 nodes are available: .*Insufficient cpu/);
});

test('a command the image does not have fails as a start error', async () => {
  const { reason } = await failureOf(launchSpec(testApp({ command: ['no-such-program'] })));
  assert.match(reason, /^The app container could not start: .*no-such-program/);
});

test('an app over its memory limit is OOMKilled and says which limit', async (t) => {
  // tail keeps the whole newline-free "line" in memory.
  const spec = launchSpec(
    testApp({
      command: ['sh', '-c', 'head -c 400000000 /dev/zero | tail -n 1 >/dev/null'],
      resource_limits: { cpu_request: '50m', cpu_limit: '1', memory_request: '32Mi', memory_limit: '48Mi' },
    }),
  );
  const { reason, ms } = await failureOf(spec);
  t.diagnostic(`${reason} (${ms} ms)`);
  assert.match(reason, /^The app ran out of memory \(OOMKilled, limit 48Mi\)/);
});

test('an invalid pod is refused at launch, readably, and nothing is created', async () => {
  const spec = launchSpec(testApp({ container_image: ' sortie-demo-apps:latest' }));
  await assert.rejects(runner.launch(spec), (err: Error) => {
    assert.ok(err instanceof InputError, err.message);
    assert.match(err.message, /^Kubernetes rejected the session's pod as invalid: .*whitespace/);
    return true;
  });
  assert.equal(await readPod(kc, namespace.name, spec.workloadName), undefined);
});

test('launching the same session twice is a conflict', async () => {
  const spec = launchSpec();
  await runner.launch(spec);
  try {
    await assert.rejects(runner.launch(spec), (err: Error) => {
      assert.ok(err instanceof ConflictError, err.message);
      assert.equal(err.message, `A pod named "${spec.workloadName}" already exists in namespace "${namespace.name}"`);
      return true;
    });
  } finally {
    await runner.stop(spec.sessionId);
  }
});

test('a ResourceQuota refusal rejects the launch with the quota message and leaves nothing behind', async () => {
  quotaNamespace = await createTestNamespace(kc, 'quota');
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedResourceQuota({ namespace: quotaNamespace.name, body: { metadata: { name: 'sessions' }, spec: { hard: { pods: '1' } } } });
  // Admission refuses every pod until the quota controller has computed the quota's usage.
  await waitFor(async () => {
    const quota = await core.readNamespacedResourceQuota({ name: 'sessions', namespace: quotaNamespace.name });
    return quota.status?.hard?.['pods'] === '1' && quota.status.used?.['pods'] !== undefined;
  }, { what: 'the quota to be counted', timeoutMs: 30_000, intervalMs: 100 });

  const quotaRunner = makeRunner(kc, quotaNamespace.name);
  const quotaEvents = new EventLog();
  await quotaRunner.start(quotaEvents.listener);
  const first = launchSpec();
  const second = launchSpec();
  try {
    await quotaRunner.launch(first);
    await assert.rejects(quotaRunner.launch(second), (err: Error) => {
      assert.ok(err instanceof ConflictError, err.message);
      assert.match(err.message, /^The namespace's resource quota refused the session: .*exceeded quota: sessions, requested: pods=1, used: pods=1, limited: pods=1/);
      return true;
    });
    assert.equal(await readPod(kc, quotaNamespace.name, second.workloadName), undefined);
    assert.deepEqual(quotaEvents.for(second.sessionId), []);
  } finally {
    await quotaRunner.stop(first.sessionId);
    await quotaRunner.close();
  }
});
