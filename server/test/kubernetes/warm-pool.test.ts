import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { ANNOTATION_USER_ID } from '../../src/runners/kubernetes/labels.js';
import type { Session } from '../../src/sessions/session.js';
import type { Api } from '../support/api.js';
import { readDesktop } from '../support/rfb.js';
import { waitFor } from '../support/wait.js';
import { DEMO_IMAGE, readPod, SMALL_LIMITS, startClusterDesk, waitForPodGone, type ClusterDesk } from './cluster.js';

// The warm pool on the kubernetes runner: pooled sessions are pods started before anyone
// asks, in a namespace of this file's own on the local cluster.

const XTERM = { id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: DEMO_IMAGE, command: ['xterm'], resource_limits: SMALL_LIMITS, warm_pool: 1 };

async function pooled(api: Api): Promise<Session[]> {
  const res = await api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=creating,running&limit=200');
  assert.equal(res.status, 200, res.text);
  return res.body.sessions.filter((s) => s.pooled);
}

/** Waits until the pool holds exactly `size` running sessions, none of `not`. */
async function poolOf(api: Api, size: number, not: readonly string[] = []): Promise<Session[]> {
  return waitFor(
    async () => {
      const now = await pooled(api);
      return now.length === size && now.every((s) => s.status === 'running' && !not.includes(s.id)) ? now : undefined;
    },
    { what: `the pool to hold ${size} running sessions`, timeoutMs: 180_000, intervalMs: 250 },
  );
}

/** Waits until the pod names `userId` as its owner (the annotation is set just after the claim's answer). */
async function ownerOnPod(desk: ClusterDesk, podName: string, userId: string): Promise<void> {
  await waitFor(async () => (await readPod(desk.kc, desk.namespace.name, podName))?.metadata?.annotations?.[ANNOTATION_USER_ID] === userId, {
    what: `pod ${podName} to name ${userId} in ${ANNOTATION_USER_ID}`,
    timeoutMs: 10_000,
    intervalMs: 100,
  });
}

describe('a warm pool of 1 on Kubernetes', () => {
  let desk: ClusterDesk;
  let api: Api;
  before(async () => {
    desk = await startClusterDesk({ name: 'pool', apps: [XTERM], env: { SORTIE_MAX_SESSIONS: '4' } });
    api = desk.sortie.api;
  });
  after(async () => {
    // Pool off first: ending the sessions would otherwise start new pods behind the cleanup.
    if (api) await api.request('PUT', '/api/apps/xterm', { ...XTERM, warm_pool: 0 });
    if (api) await waitFor(async () => (await pooled(api)).length === 0, { what: 'the pool to be empty', timeoutMs: 60_000 }).catch(() => undefined);
    await desk?.cleanup();
  });

  test('a launch is running in the POST answer, its desktop streams, and a new pod refills the pool', async () => {
    const [warm] = await poolOf(api, 1);
    const pooledPod = await readPod(desk.kc, desk.namespace.name, warm!.pod_name);
    assert.ok(pooledPod, 'the pooled session is a pod');
    assert.equal(pooledPod.metadata?.annotations?.[ANNOTATION_USER_ID], '', 'nobody owns a pooled pod');
    const claimed = await api.launch('xterm', 'alice');
    assert.equal(claimed.status, 'running', 'running in the POST answer');
    assert.equal(claimed.id, warm!.id);
    assert.equal(claimed.user_id, 'alice');
    await ownerOnPod(desk, claimed.pod_name, 'alice');
    const desktop = await readDesktop(desk.sortie.wsUrl(claimed.websocket_url));
    assert.equal(desktop.banner, 'RFB 003.008');
    assert.ok(desktop.nonBlank, 'the xterm is on the desktop');
    const [next] = await poolOf(api, 1, [claimed.id]);
    assert.ok(await readPod(desk.kc, desk.namespace.name, next!.pod_name));
    await api.end(claimed.id);
    await waitForPodGone(desk.kc, desk.namespace.name, claimed.pod_name);
  });

  test("the pooled pod deleted behind Sortie's back is replaced", async () => {
    const [warm] = await poolOf(api, 1);
    await desk.kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ name: warm!.pod_name, namespace: desk.namespace.name, gracePeriodSeconds: 0 });
    const ended = await api.waitFor(warm!.id, ['failed', 'terminated'], 120_000);
    assert.ok(ended.reason, 'the session says why it ended');
    const [replacement] = await poolOf(api, 1, [warm!.id]);
    const pod = await readPod(desk.kc, desk.namespace.name, replacement!.pod_name);
    assert.ok(pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 'the new pooled pod is ready');
    // And it serves the next launch at once.
    const claimed = await api.launch('xterm', 'bob');
    assert.equal(claimed.status, 'running');
    assert.equal(claimed.id, replacement!.id);
    await ownerOnPod(desk, claimed.pod_name, 'bob');
    await api.end(claimed.id);
  });
});
