import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, Watch, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { buildSessionPod } from '../../src/runners/kubernetes/pod-spec.js';
import { startTestSortie, type TestSortie } from '../support/harness.js';
import { readDesktop } from '../support/rfb.js';
import { sleep, waitFor } from '../support/wait.js';
import { adminKubeConfig, createTestNamespace, DEMO_IMAGE, kubernetesSortieEnv, launchSpec, readPod, SIDECAR_IMAGE, SMALL_LIMITS, waitForPodGone } from './cluster.js';

// The whole product on the kubernetes runner: real HTTP API, SQLite, relay and session
// service, with session pods in a real cluster.

const APPS = [
  { id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: DEMO_IMAGE, command: ['xterm'], resource_limits: SMALL_LIMITS },
  { id: 'ghost', name: 'Ghost', launch_type: 'container', container_image: 'sortie-does-not-exist:v1', resource_limits: SMALL_LIMITS },
];

let kc: KubeConfig;

/** A Sortie on the kubernetes runner, for one test namespace. */
function startOnCluster(name: string, namespace: string, extra: { env?: Record<string, string>; dir?: string } = {}): Promise<TestSortie> {
  return startTestSortie({
    name,
    apps: APPS,
    ...(extra.dir ? { dir: extra.dir } : {}),
    env: {
      ...kubernetesSortieEnv(namespace),
      ...extra.env,
    },
  });
}

before(async () => {
  kc = await adminKubeConfig();
});

describe('sessions through the API, on pods', () => {
  let namespace: { name: string; remove: () => Promise<void> };
  let sortie: TestSortie;
  /** The first Sortie's folder, when a restart runs a second one on it. */
  let firstSortie: TestSortie | undefined;
  const api = () => sortie.api;

  before(async () => {
    namespace = await createTestNamespace(kc, 'api');
    sortie = await startOnCluster('k8s-api', namespace.name);
  });

  after(async () => {
    await sortie?.cleanup();
    await firstSortie?.cleanup();
    await namespace?.remove();
  });

  test('POST → creating → running (from the watch) → desktop through /ws/sessions/{id} → DELETE → pod gone', async (t) => {
    let podReadyAt: number | undefined;
    const watch = await new Watch(kc).watch(
      `/api/v1/namespaces/${namespace.name}/pods`,
      {},
      (_type, pod: V1Pod) => {
        if (podReadyAt === undefined && pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) podReadyAt = Date.now();
      },
      () => undefined,
    );
    try {
      const postedAt = Date.now();
      const created = await api().launch('xterm', 'alice');
      const answeredIn = Date.now() - postedAt;
      assert.equal(created.status, 'creating');
      assert.equal(created.pod_name, `sortie-session-${created.id}`);

      // The API answers before the pod exists: the launch runs behind it.
      let pod: V1Pod | undefined;
      await waitFor(async () => (pod = await readPod(kc, namespace.name, created.pod_name)) !== undefined, { what: 'the session pod', timeoutMs: 10_000, intervalMs: 20 });
      assert.ok(pod);
      assert.equal(pod.metadata?.annotations?.['sortie.io/user-id'], 'alice');
      assert.equal(pod.metadata?.labels?.['sortie.io/session-id'], created.id);

      const running = await api().waitFor(created.id, 'running', 60_000);
      for (let i = 0; i < 40 && podReadyAt === undefined; i++) await sleep(25);
      assert.ok(podReadyAt !== undefined);
      // updated_at is written when the service handles the runner's ready event (ms precision).
      const overhead = Date.parse(running.updated_at) - podReadyAt;
      t.diagnostic(`POST answered in ${answeredIn} ms; POST → running ${Date.parse(running.updated_at) - postedAt} ms; pod Ready (watch) → session running: ${overhead} ms`);
      assert.ok(overhead < 250, `Sortie took ${overhead} ms from the pod's Ready to running`);

      // Through Sortie's relay: it answers the sidecar's VNC challenge with the session secret.
      const desktop = await readDesktop(sortie.wsUrl(created.websocket_url));
      assert.equal(desktop.banner, 'RFB 003.008');
      assert.ok(desktop.nonBlank, 'xterm is on the desktop');

      const ended = await api().request<{ status: string }>('DELETE', `/api/sessions/${created.id}`);
      assert.equal(ended.status, 200);
      assert.equal(ended.body.status, 'terminated');
      await waitForPodGone(kc, namespace.name, created.pod_name);
      assert.equal((await api().session(created.id)).status, 'terminated');
    } finally {
      watch.abort();
    }
  });

  test('an image that cannot be pulled fails the session with the reason, and the pod is removed', async () => {
    const created = await api().launch('ghost', 'alice');
    const failed = await api().waitFor(created.id, 'failed', 60_000);
    assert.match(failed.reason ?? '', /^Image "sortie-does-not-exist:v1" could not be pulled: /);
    await waitForPodGone(kc, namespace.name, created.pod_name);
  });

  test('a restart adopts running sessions, ends those whose pod vanished, and removes orphan pods', async () => {
    const kept = await api().launch('xterm', 'alice');
    const lost = await api().launch('xterm', 'bob');
    await api().waitFor(kept.id, 'running', 60_000);
    await api().waitFor(lost.id, 'running', 60_000);

    await sortie.stop();
    firstSortie = sortie;
    const core = kc.makeApiClient(CoreV1Api);
    await core.deleteNamespacedPod({ name: lost.pod_name, namespace: namespace.name, gracePeriodSeconds: 0 });
    const orphan = launchSpec();
    await core.createNamespacedPod({
      namespace: namespace.name,
      body: buildSessionPod(orphan, { namespace: namespace.name, sidecarImage: SIDECAR_IMAGE, imagePullPolicy: 'IfNotPresent' }),
    });
    await waitForPodGone(kc, namespace.name, lost.pod_name);

    sortie = await startOnCluster('k8s-api', namespace.name, { dir: firstSortie.dir });
    assert.equal((await api().session(kept.id)).status, 'running');
    const desktop = await readDesktop(sortie.wsUrl(kept.websocket_url));
    assert.ok(desktop.nonBlank, 'the adopted session still streams');
    const lostNow = await api().session(lost.id);
    assert.ok(lostNow.status === 'terminated' || lostNow.status === 'failed', lostNow.status);
    assert.ok(lostNow.reason, 'with a reason');

    // The orphan's removal and the kept session's end each wait out the kubelet's pod
    // teardown (over ten seconds here); side by side they wait it out once.
    await api().request('DELETE', `/api/sessions/${kept.id}`);
    await Promise.all([
      // Deleting a pod still being created can take the kubelet a while on a busy node.
      waitForPodGone(kc, namespace.name, orphan.workloadName),
      waitForPodGone(kc, namespace.name, kept.pod_name),
    ]);
  });
});

describe('limits an operator sets', () => {
  let namespace: { name: string; remove: () => Promise<void> };

  before(async () => {
    namespace = await createTestNamespace(kc, 'api-limits');
  });

  after(async () => {
    await namespace?.remove();
  });

  test('over the namespace quota, the session fails with the quota message and no pod is left', async (t) => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedResourceQuota({ namespace: namespace.name, body: { metadata: { name: 'sessions' }, spec: { hard: { pods: '1' } } } });
    t.after(() => core.deleteNamespacedResourceQuota({ name: 'sessions', namespace: namespace.name }).then(() => undefined));
    // The API server enforces a quota only once its controller has written status.hard: until
    // then a pod over it is admitted. Wait for that, not for any status at all.
    await waitFor(async () => {
      const quota = await core.readNamespacedResourceQuota({ name: 'sessions', namespace: namespace.name });
      return quota.status?.hard?.['pods'] === '1' && quota.status?.used?.['pods'] !== undefined;
    }, { what: 'the quota to be enforced', timeoutMs: 30_000, intervalMs: 100 });
    const sortie = await startOnCluster('k8s-quota', namespace.name);
    t.after(() => sortie.cleanup());
    const { api } = sortie;
    // The first session takes the one pod the quota allows; by the time it runs, every
    // API server cache has seen the quota, so the second is refused for certain.
    const first = await api.launch('xterm', 'alice');
    await api.waitFor(first.id, 'running', 60_000);
    const second = await api.launch('xterm', 'alice');
    const failed = await api.waitFor(second.id, 'failed', 10_000);
    assert.match(failed.reason ?? '', /^The namespace's resource quota refused the session: .*exceeded quota: sessions/);
    assert.equal(await readPod(kc, namespace.name, second.pod_name), undefined);
    await api.request('DELETE', `/api/sessions/${first.id}`);
    await waitForPodGone(kc, namespace.name, first.pod_name);
  });

  test('a pod not ready within POD_READY_TIMEOUT fails the session and is removed', async (t) => {
    // Half a second: shorter than any pod here takes, so the timeout always wins the race.
    const sortie = await startOnCluster('k8s-timeout', namespace.name, { env: { POD_READY_TIMEOUT: '0.5' } });
    t.after(() => sortie.cleanup());
    const created = await sortie.api.launch('xterm', 'alice');
    const failed = await sortie.api.waitFor(created.id, 'failed', 15_000);
    assert.match(failed.reason ?? '', /POD_READY_TIMEOUT/);
    await waitForPodGone(kc, namespace.name, created.pod_name);
  });
});
