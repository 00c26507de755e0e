import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, Watch, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { KubernetesRunner } from '../../src/runners/kubernetes/kubernetes-runner.js';
import { adminKubeConfig, createTestNamespace, DEMO_IMAGE, EventLog, launchSpec, makeRunner, readPod, SIDECAR_IMAGE, testApp, waitForPodGone } from './cluster.js';
import { sleep } from '../support/wait.js';
import { readDesktop } from './vnc.js';

let kc: KubeConfig;
let namespace: { name: string; remove: () => Promise<void> };
let runner: KubernetesRunner;
const events = new EventLog();

before(async () => {
  kc = await adminKubeConfig();
  namespace = await createTestNamespace(kc, 'lifecycle');
  runner = makeRunner(kc, namespace.name);
  assert.deepEqual(await runner.start(events.listener), []);
});

after(async () => {
  await runner?.close();
  await namespace?.remove();
});

test('launch → ready from the watch → desktop over WebSocket → stop → pod gone', async (t) => {
  const spec = launchSpec();
  const name = spec.workloadName;

  // An independent watch, to tell the runner's own overhead from the API server's delivery.
  let rawReadyAt: number | undefined;
  const rawWatch = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace.name}/pods`,
    { fieldSelector: `metadata.name=${name}` },
    (_type, pod: V1Pod) => {
      if (rawReadyAt === undefined && pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && pod.status.podIP) {
        rawReadyAt = Date.now();
      }
    },
    () => undefined,
  );

  const launchedAt = Date.now();
  await runner.launch(spec);
  const createdIn = Date.now() - launchedAt;
  const ready = await events.next(spec.sessionId, 60_000);
  // Both watches get the same update; whichever connection is read first wins.
  for (let i = 0; i < 40 && rawReadyAt === undefined; i++) await sleep(25);
  rawWatch.abort();
  assert.equal(ready.event.type, 'ready', JSON.stringify(ready.event));
  assert.ok(ready.event.type === 'ready');

  const pod = await readPod(kc, namespace.name, name);
  assert.ok(pod, 'the pod exists');
  assert.equal(ready.event.endpoint.host, pod.status?.podIP);
  assert.equal(ready.event.endpoint.port, 6080);
  const readyCondition = pod.status?.conditions?.find((c) => c.type === 'Ready');
  assert.equal(readyCondition?.status, 'True');
  const readyTransition = new Date(readyCondition!.lastTransitionTime!).getTime();
  const created = new Date(pod.metadata!.creationTimestamp!).getTime();

  t.diagnostic(`create call: ${createdIn} ms; launch → ready event: ${ready.at - launchedAt} ms`);
  t.diagnostic(`pod creationTimestamp → Ready condition: ~${readyTransition - created} ms (API timestamps have 1 s resolution)`);
  t.diagnostic(`Ready condition lastTransitionTime → ready event: ${ready.at - readyTransition} ms (0-1000 ms of this is timestamp truncation)`);
  t.diagnostic(`runner event − independent watch seeing Ready: ${rawReadyAt === undefined ? 'not seen' : `${ready.at - rawReadyAt} ms`}`);
  // The runner adds nothing to the API server's own delivery (a poll would add up to its period).
  // The lastTransitionTime gap is mostly the kubelet's status write, which no client controls.
  assert.ok(rawReadyAt !== undefined && ready.at - rawReadyAt < 250, `runner event ${ready.at - (rawReadyAt ?? NaN)} ms after an independent watch`);
  assert.ok(ready.at - readyTransition < 5_000, `ready event ${ready.at - readyTransition} ms after the Ready transition`);

  const url = `ws://${ready.event.endpoint.host}:${ready.event.endpoint.port}/`;
  const bypass = await readDesktop(url);
  assert.equal(bypass.banner, 'RFB 003.008');
  assert.deepEqual(bypass.offered, [2], 'only VNC authentication is offered: the session secret is required');
  assert.equal((await readDesktop(url, 'wrongpw!')).accepted, false, 'a wrong password is refused');
  const desktop = await readDesktop(url, spec.streamSecret);
  assert.equal(desktop.accepted, true);
  assert.ok(desktop.width! > 0 && desktop.height! > 0);
  assert.ok(desktop.nonBlank, 'xterm is drawn on the desktop');

  const stoppedAt = Date.now();
  await runner.stop(spec.sessionId);
  const goneIn = await waitForPodGone(kc, namespace.name, name);
  t.diagnostic(`stop → pod gone: ${Date.now() - stoppedAt} ms (stop call ${Date.now() - stoppedAt - goneIn} ms)`);
  await sleep(300);
  assert.deepEqual(events.for(spec.sessionId).map((r) => r.event.type), ['ready'], 'a pod Sortie deletes emits nothing');

  await runner.stop(spec.sessionId); // idempotent: 404 is fine
});

/** The client deserialises into model classes; the contract is about their JSON. */
const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

test('the created pod matches the contract, field by field, as the API server stored it', async () => {
  const spec = launchSpec(
    testApp({
      id: 'xeyes',
      name: 'X Eyes',
      command: ['xeyes'],
      resource_limits: { cpu_request: '100m', cpu_limit: '750m', memory_request: '96Mi', memory_limit: '384Mi' },
    }),
    'alice@example.com',
  );
  await runner.launch(spec);
  try {
    const pod = plain(await readPod(kc, namespace.name, spec.workloadName));
    assert.ok(pod);
    const meta = pod.metadata!;
    assert.equal(meta.name, `sortie-session-${spec.sessionId}`);
    assert.equal(meta.namespace, namespace.name);
    assert.deepEqual(meta.labels, {
      'app.kubernetes.io/managed-by': 'sortie',
      'app.kubernetes.io/component': 'session',
      'sortie.io/session-id': spec.sessionId,
      'sortie.io/app-id': 'xeyes',
    });
    assert.equal(meta.annotations?.['sortie.io/user-id'], 'alice@example.com');
    assert.equal(meta.annotations?.['sortie.io/app-name'], 'X Eyes');

    const podSpec = pod.spec!;
    assert.equal(podSpec.restartPolicy, 'Never');
    assert.equal(podSpec.automountServiceAccountToken, false);
    assert.equal(podSpec.enableServiceLinks, false);
    assert.equal(podSpec.terminationGracePeriodSeconds, 5);
    assert.equal(podSpec.securityContext?.runAsUser, 1000);
    assert.equal(podSpec.securityContext?.runAsGroup, 1000);
    assert.equal(podSpec.securityContext?.fsGroup, 1000);
    assert.equal(podSpec.securityContext?.runAsNonRoot, true);
    assert.deepEqual(podSpec.securityContext?.seccompProfile, { type: 'RuntimeDefault' });
    assert.deepEqual(podSpec.volumes?.find((v) => v.name === 'x11')?.emptyDir, { medium: 'Memory' });
    // The app's home goes with the pod (no persistent_home here).
    assert.deepEqual(podSpec.volumes?.find((v) => v.name === 'home')?.emptyDir, {});
    // No token volume was injected.
    assert.deepEqual(podSpec.volumes?.map((v) => v.name), ['x11', 'home']);

    const app = podSpec.containers.find((c) => c.name === 'app')!;
    const sidecar = podSpec.containers.find((c) => c.name === 'vnc-sidecar')!;
    assert.ok(app && sidecar);
    assert.equal(app.image, DEMO_IMAGE);
    assert.deepEqual(app.command, ['xeyes']);
    assert.deepEqual(app.env, [{ name: 'DISPLAY', value: ':99' }, { name: 'HOME', value: '/home/sortie' }]);
    assert.deepEqual(app.volumeMounts, [{ name: 'x11', mountPath: '/tmp/.X11-unix' }, { name: 'home', mountPath: '/home/sortie' }]);
    assert.deepEqual(app.resources, { requests: { cpu: '100m', memory: '96Mi' }, limits: { cpu: '750m', memory: '384Mi' } });
    assert.equal(sidecar.image, SIDECAR_IMAGE);
    assert.deepEqual(sidecar.env, [
      { name: 'DISPLAY', value: ':99' },
      { name: 'VNC_PASSWORD', value: spec.streamSecret },
      { name: 'VNC_CLIPBOARD', value: 'both' },
    ]);
    assert.deepEqual(sidecar.ports, [
      { name: 'websockify', containerPort: 6080, protocol: 'TCP' },
      { name: 'files', containerPort: 6081, protocol: 'TCP' },
    ]);
    // The sidecar serves the app's home to the file API from the same volume.
    assert.deepEqual(sidecar.volumeMounts?.find((m) => m.name === 'home'), { name: 'home', mountPath: '/session-home' });
    assert.deepEqual(sidecar.readinessProbe?.tcpSocket?.port, 6080);
    assert.equal(sidecar.readinessProbe?.periodSeconds, 1);
    assert.deepEqual(sidecar.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } });
    for (const c of [app, sidecar]) {
      assert.equal(c.imagePullPolicy, 'IfNotPresent', c.name);
      assert.deepEqual(c.volumeMounts?.find((m) => m.name === 'x11'), { name: 'x11', mountPath: '/tmp/.X11-unix' }, c.name);
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false, c.name);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], c.name);
      assert.equal(c.securityContext?.runAsNonRoot, true, c.name);
    }

    const ready = await events.next(spec.sessionId);
    assert.equal(ready.event.type, 'ready', JSON.stringify(ready.event));
    // The app really runs as UID 1000 with no capabilities (read back from the kubelet's view).
    const running = await readPod(kc, namespace.name, spec.workloadName);
    assert.ok(running?.status?.containerStatuses?.every((s) => s.ready && s.state?.running), 'both containers run and are ready');
  } finally {
    await runner.stop(spec.sessionId);
  }
});

test('an app that quits after the desktop was ready exits; one that crashes fails', async () => {
  // Sleep long enough for the sidecar's readiness (about 2-3 s here) to land first.
  const quits = launchSpec(testApp({ command: ['sh', '-c', 'sleep 8; exit 0'] }));
  const crashes = launchSpec(testApp({ command: ['sh', '-c', 'sleep 8; exit 3'] }));
  await Promise.all([runner.launch(quits), runner.launch(crashes)]);
  try {
    assert.equal((await events.next(quits.sessionId)).event.type, 'ready');
    assert.equal((await events.next(crashes.sessionId)).event.type, 'ready');
    const waitSecond = async (id: string) => {
      for (let i = 0; i < 300 && events.for(id).length < 2; i++) await sleep(100);
      return events.for(id).map((r) => r.event);
    };
    assert.deepEqual(await waitSecond(quits.sessionId), [
      (await events.next(quits.sessionId)).event,
      { type: 'exited', sessionId: quits.sessionId, reason: 'The app exited' },
    ]);
    assert.deepEqual((await waitSecond(crashes.sessionId))[1], {
      type: 'failed',
      sessionId: crashes.sessionId,
      reason: 'The app container exited with code 3',
    });
  } finally {
    await Promise.all([runner.stop(quits.sessionId), runner.stop(crashes.sessionId)]);
  }
});

test('an app that dies before the desktop is ready fails with its exit code', async () => {
  const spec = launchSpec(testApp({ command: ['sh', '-c', 'exit 1'] }));
  await runner.launch(spec);
  try {
    const end = await events.end(spec.sessionId);
    const sawReady = events.for(spec.sessionId)[0]!.event.type === 'ready';
    assert.deepEqual(end.event, {
      type: 'failed',
      sessionId: spec.sessionId,
      // Usually the exit is seen first; if the kubelet published readiness first, no "before" is claimed.
      reason: `The app container exited with code 1${sawReady ? '' : ' before the desktop was ready'}`,
    });
  } finally {
    await runner.stop(spec.sessionId);
  }
});

test('a ready pod deleted by someone else fails the session', async () => {
  const spec = launchSpec();
  await runner.launch(spec);
  assert.equal((await events.next(spec.sessionId)).event.type, 'ready');
  await kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ name: spec.workloadName, namespace: namespace.name });
  for (let i = 0; i < 100 && events.for(spec.sessionId).length < 2; i++) await sleep(50);
  assert.deepEqual(events.for(spec.sessionId)[1]?.event, {
    type: 'failed',
    sessionId: spec.sessionId,
    reason: "The session's pod was deleted outside Sortie",
  });
  await waitForPodGone(kc, namespace.name, spec.workloadName);
  await sleep(300);
  assert.equal(events.for(spec.sessionId).length, 2, 'one report per ending, not one per status update');
  await runner.stop(spec.sessionId);
});

test('start() reports existing pods for reconciliation and does not repeat their events', async () => {
  const ready = launchSpec();
  const broken = launchSpec(testApp({ command: ['sh', '-c', 'exit 7'] }));
  await Promise.all([runner.launch(ready), runner.launch(broken)]);
  const readyEvent = await events.next(ready.sessionId);
  assert.equal(readyEvent.event.type, 'ready');
  assert.equal((await events.end(broken.sessionId)).event.type, 'failed');

  const restarted = makeRunner(kc, namespace.name);
  const later = new EventLog();
  try {
    const workloads = await restarted.start(later.listener);
    const byId = new Map(workloads.map((w) => [w.sessionId, w]));
    assert.deepEqual(byId.get(ready.sessionId), {
      sessionId: ready.sessionId,
      state: 'ready',
      endpoint: readyEvent.event.type === 'ready' ? readyEvent.event.endpoint : undefined,
    });
    assert.deepEqual(byId.get(broken.sessionId), { sessionId: broken.sessionId, state: 'ended', reason: 'The app container exited with code 7' });

    const pending = launchSpec();
    await restarted.launch(pending);
    assert.equal((await later.next(pending.sessionId)).event.type, 'ready', 'the adopted watch still reports new sessions');
    assert.deepEqual(later.for(ready.sessionId), [], 'no second ready for an adopted session');
    assert.deepEqual(later.for(broken.sessionId), [], 'no second failure for an adopted session');

    await Promise.all([restarted.stop(ready.sessionId), restarted.stop(broken.sessionId), restarted.stop(pending.sessionId)]);
    await waitForPodGone(kc, namespace.name, pending.workloadName);
    assert.deepEqual(later.all.map((r) => r.event.type), ['ready'], 'stopping emits nothing');
  } finally {
    await restarted.close();
  }
});
