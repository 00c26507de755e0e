import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1ContainerState, V1Pod, V1PodCondition } from '@kubernetes/client-node';
import { appSchema } from '../../catalog/app.js';
import { buildSessionPod } from './pod-spec.js';
import { podLaunchStep, podState } from './pod-status.js';

/** A session pod as the API server returns it: our spec plus the status under test. */
function pod(status: {
  phase?: string;
  podIP?: string;
  conditions?: V1PodCondition[];
  app?: V1ContainerState;
  sidecar?: V1ContainerState;
  reason?: string;
  message?: string;
  deleting?: boolean;
  image?: string;
}): V1Pod {
  const app = appSchema.parse({
    id: 'xterm',
    name: 'XTerm',
    launch_type: 'container',
    container_image: status.image ?? 'sortie-demo-apps:latest',
    command: ['xterm'],
  });
  const built = buildSessionPod(
    { sessionId: 's1', workloadName: 'sortie-session-s1', userId: 'u', app, streamSecret: 'pw' },
    { namespace: 'sortie', sidecarImage: 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest', imagePullPolicy: 'IfNotPresent' },
  );
  if (status.deleting) built.metadata!.deletionTimestamp = new Date();
  const containerStatuses = [
    ...(status.sidecar ? [{ name: 'vnc-sidecar', image: 'docker.io/rjsadow/sortie-vnc-sidecar:latest', imageID: '', ready: false, restartCount: 0, state: status.sidecar }] : []),
    ...(status.app ? [{ name: 'app', image: `docker.io/library/${status.image ?? 'sortie-demo-apps:latest'}`, imageID: '', ready: false, restartCount: 0, state: status.app }] : []),
  ];
  built.status = {
    phase: status.phase ?? 'Pending',
    ...(status.podIP ? { podIP: status.podIP } : {}),
    ...(status.reason ? { reason: status.reason } : {}),
    ...(status.message ? { message: status.message } : {}),
    conditions: status.conditions ?? [],
    containerStatuses,
  };
  return built;
}

const cond = (type: string, value: 'True' | 'False', reason?: string, message?: string): V1PodCondition => ({
  type,
  status: value,
  ...(reason ? { reason } : {}),
  ...(message ? { message } : {}),
});
const running: V1ContainerState = { running: { startedAt: new Date() } };
const terminated = (exitCode: number, reason = 'Error', message?: string): V1ContainerState => ({
  terminated: { exitCode, reason, ...(message ? { message } : {}) },
});

test('a freshly created pod is pending', () => {
  assert.deepEqual(podState(pod({})), { kind: 'pending' });
  const creating = { waiting: { reason: 'ContainerCreating' } };
  assert.deepEqual(podState(pod({ conditions: [cond('PodScheduled', 'True')], app: creating, sidecar: creating })), { kind: 'pending' });
});

test('Ready True with a pod IP is ready at websockify', () => {
  const ready = pod({ phase: 'Running', podIP: '10.244.0.7', conditions: [cond('PodScheduled', 'True'), cond('Ready', 'True')], app: running, sidecar: running });
  assert.deepEqual(podState(ready), { kind: 'ready', endpoint: { host: '10.244.0.7', port: 6080 } });
});

test('Ready without a pod IP yet is still pending', () => {
  assert.deepEqual(podState(pod({ phase: 'Running', conditions: [cond('Ready', 'True')], app: running, sidecar: running })), { kind: 'pending' });
});

test('running containers whose probe has not passed are pending', () => {
  const notReady = pod({ phase: 'Running', podIP: '10.244.0.7', conditions: [cond('Ready', 'False', 'ContainersNotReady')], app: running, sidecar: running });
  assert.deepEqual(podState(notReady), { kind: 'pending' });
});

test('image pull failures name the image as the catalog wrote it', () => {
  const message = 'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/sortie-does-not-exist:v1": failed to resolve reference';
  for (const reason of ['ErrImagePull', 'ImagePullBackOff']) {
    const state = podState(pod({ image: 'sortie-does-not-exist:v1', app: { waiting: { reason, message } }, sidecar: running }));
    assert.deepEqual(state, { kind: 'failed', reason: `Image "sortie-does-not-exist:v1" could not be pulled: ${message}` });
  }
});

test('an invalid image reference and a Never-pull miss say so', () => {
  const invalid = podState(pod({ image: 'Not A Valid:Image', app: { waiting: { reason: 'InvalidImageName', message: 'couldn\'t parse image reference "Not A Valid:Image"' } } }));
  assert.equal(invalid.kind, 'failed');
  assert.match((invalid as { reason: string }).reason, /^Image "Not A Valid:Image" is not a valid image reference: couldn't parse/);
  const never = podState(pod({ app: { waiting: { reason: 'ErrImageNeverPull', message: 'Container image "x" is not present with pull policy of Never' } } }));
  assert.deepEqual(never, { kind: 'failed', reason: 'Image "sortie-demo-apps:latest" is not present on the node and imagePullPolicy is Never' });
});

test('a sidecar image that cannot be pulled fails the session too', () => {
  const state = podState(pod({ sidecar: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "ghcr.io/rjsadow/sortie-vnc-sidecar:latest"' } } }));
  assert.deepEqual(state, {
    kind: 'failed',
    reason: 'Image "ghcr.io/rjsadow/sortie-vnc-sidecar:latest" could not be pulled: Back-off pulling image "ghcr.io/rjsadow/sortie-vnc-sidecar:latest"',
  });
});

test('a pod waiting for its home claim to be bound is pending, not failed', () => {
  for (const message of [
    '0/1 nodes are available: 1 pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.',
    '0/3 nodes are available: persistentvolumeclaim "sortie-home-alice" not found.',
  ]) {
    assert.deepEqual(podState(pod({ conditions: [cond('PodScheduled', 'False', 'Unschedulable', message)] })), { kind: 'pending' }, message);
  }
});

test('Unschedulable passes on what the scheduler said', () => {
  const message = '0/1 nodes are available: 1 Insufficient memory.';
  const state = podState(pod({ conditions: [cond('PodScheduled', 'False', 'Unschedulable', message)] }));
  assert.deepEqual(state, { kind: 'failed', reason: `No node can run this session: ${message}` });
});

test('CreateContainerConfigError is a failure with the kubelet message', () => {
  const message = 'secret "missing" not found';
  const state = podState(pod({ app: { waiting: { reason: 'CreateContainerConfigError', message } }, sidecar: running }));
  assert.deepEqual(state, { kind: 'failed', reason: `The app container could not be created: ${message}` });
});

test('an app that exits non-zero before readiness fails with its code', () => {
  const state = podState(pod({ phase: 'Running', podIP: '10.244.0.7', app: terminated(1), sidecar: running }), { wasReady: false });
  assert.deepEqual(state, { kind: 'failed', reason: 'The app container exited with code 1 before the desktop was ready' });
});

test('an app that exits 0 before readiness never worked: failed', () => {
  const state = podState(pod({ phase: 'Running', app: terminated(0, 'Completed'), sidecar: running }), { wasReady: false });
  assert.deepEqual(state, { kind: 'failed', reason: 'The app container exited with code 0 before the desktop was ready' });
});

test('an app that exits 0 after readiness exited normally', () => {
  const state = podState(pod({ phase: 'Running', podIP: '10.244.0.7', app: terminated(0, 'Completed'), sidecar: running }), { wasReady: true });
  assert.deepEqual(state, { kind: 'exited', reason: 'The app exited' });
});

test('an app that crashes after readiness failed, without "before ready"', () => {
  const state = podState(pod({ phase: 'Running', podIP: '10.244.0.7', app: terminated(139, 'Error'), sidecar: running }), { wasReady: true });
  assert.deepEqual(state, { kind: 'failed', reason: 'The app container exited with code 139' });
  const killed = podState(pod({ phase: 'Running', app: terminated(137, 'Error'), sidecar: running }), { wasReady: true });
  assert.deepEqual(killed, { kind: 'failed', reason: 'The app container exited with code 137 (killed)' });
});

test('OOMKilled names the memory limit', () => {
  const state = podState(pod({ phase: 'Running', app: terminated(137, 'OOMKilled'), sidecar: running }), { wasReady: true });
  assert.deepEqual(state, { kind: 'failed', reason: 'The app ran out of memory (OOMKilled, limit 2Gi)' });
});

test('a command the runtime cannot exec is a start failure', () => {
  const message = 'failed to create containerd task: exec: "xtrem": executable file not found in $PATH: unknown';
  const state = podState(pod({ phase: 'Running', app: terminated(128, 'StartError', message), sidecar: running }), { wasReady: false });
  assert.deepEqual(state, { kind: 'failed', reason: `The app container could not start: ${message}` });
});

test('a sidecar that dies fails the session', () => {
  const state = podState(pod({ phase: 'Running', app: running, sidecar: terminated(1) }), { wasReady: true });
  assert.deepEqual(state, { kind: 'failed', reason: 'The VNC sidecar container exited with code 1' });
});

test('phase Failed without container detail (eviction) passes on the pod reason', () => {
  const state = podState(pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }));
  assert.deepEqual(state, { kind: 'failed', reason: "The session's pod failed: Evicted: The node was low on resource: memory." });
});

test('phase Failed with a failed container reports the container', () => {
  const state = podState(pod({ phase: 'Failed', app: terminated(2), sidecar: terminated(143) }), { wasReady: true });
  assert.deepEqual(state, { kind: 'failed', reason: 'The app container exited with code 2' });
});

test('phase Succeeded is a normal exit once ready, a failure before', () => {
  assert.deepEqual(podState(pod({ phase: 'Succeeded' }), { wasReady: true }), { kind: 'exited', reason: 'The app exited' });
  assert.deepEqual(podState(pod({ phase: 'Succeeded', app: terminated(0, 'Completed'), sidecar: terminated(0, 'Completed') }), { wasReady: true }), {
    kind: 'exited',
    reason: 'The app exited',
  });
  assert.equal(podState(pod({ phase: 'Succeeded' }), { wasReady: false }).kind, 'failed');
});

test('with readiness unknown (start-up), code 0 is an exit and no "before ready" is claimed', () => {
  assert.deepEqual(podState(pod({ phase: 'Running', app: terminated(0, 'Completed'), sidecar: running })), { kind: 'exited', reason: 'The app exited' });
  assert.deepEqual(podState(pod({ phase: 'Running', app: terminated(1), sidecar: running })), { kind: 'failed', reason: 'The app container exited with code 1' });
});

test('a pod being deleted is deleting, whatever its containers do meanwhile', () => {
  assert.deepEqual(podState(pod({ deleting: true, phase: 'Running', app: terminated(143), sidecar: running })), { kind: 'deleting' });
});

test('launch steps follow a pod from creation to Ready: a node, then its containers, then the desktop', () => {
  const creating = { waiting: { reason: 'ContainerCreating' } };
  const seen = [
    pod({}),
    pod({ conditions: [cond('PodScheduled', 'True')] }),
    pod({ conditions: [cond('PodScheduled', 'True'), cond('Initialized', 'True')], app: creating, sidecar: creating }),
    pod({ conditions: [cond('PodScheduled', 'True'), cond('Initialized', 'True')], app: running, sidecar: creating }),
    pod({ phase: 'Running', podIP: '10.244.0.7', conditions: [cond('PodScheduled', 'True'), cond('Ready', 'False', 'ContainersNotReady')], app: running, sidecar: running }),
  ].map(podLaunchStep);
  assert.deepEqual(seen, ['scheduling', 'pulling', 'pulling', 'pulling', 'starting']);
});

test('a pod the scheduler cannot place yet (a home claim being bound) is still waiting for a node', () => {
  const message = '0/1 nodes are available: 1 pod has unbound immediate PersistentVolumeClaims.';
  const waiting = pod({ conditions: [cond('PodScheduled', 'False', 'Unschedulable', message)] });
  assert.equal(podState(waiting).kind, 'pending');
  assert.equal(podLaunchStep(waiting), 'scheduling');
});

test('a pod bound to a node before its PodScheduled condition arrives is past scheduling', () => {
  const bound = pod({});
  bound.spec!.nodeName = 'worker-1';
  assert.equal(podLaunchStep(bound), 'pulling');
});

test('a container still pulling its image or initialising keeps the pod in pulling', () => {
  for (const reason of ['ContainerCreating', 'PodInitializing']) {
    const p = pod({ conditions: [cond('PodScheduled', 'True')], app: running, sidecar: { waiting: { reason } } });
    assert.equal(podLaunchStep(p), 'pulling', reason);
  }
});
