import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import Database from 'better-sqlite3';
import { LABEL_APP_ID, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_SESSION_ID, SESSION_POD_SELECTOR } from '../../src/runners/kubernetes/labels.js';
import { workloadName } from '../../src/runners/runner.js';
import { exitOf, startSortieProcess, type SortieProcess } from '../support/child.js';
import { readDesktop } from '../support/rfb.js';
import { Api } from '../support/api.js';
import { scratchDir } from '../support/harness.js';
import { DEMO_APPS } from '../support/paths.js';
import { adminKubeConfig, createTestNamespace, DEMO_IMAGE, kubernetesSortieEnv, readPod, waitForPodGone } from './cluster.js';
import { waitFor } from '../support/wait.js';

// Sortie as operators run it, on the kubernetes runner, killed with SIGKILL: no dispose,
// no goodbye. While it is down the cluster changes behind its back; the next start must
// make the database and the namespace agree again.
const scratch = scratchDir('k8s-sigkill');
let kc: KubeConfig;
let namespace: { name: string; remove: () => Promise<void> } | undefined;
const children: SortieProcess[] = [];

before(async () => {
  kc = await adminKubeConfig();
  namespace = await createTestNamespace(kc, 'sigkill');
});

after(async () => {
  for (const { child } of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exitOf(child);
    }
  }
  await namespace?.remove();
  scratch.remove();
});

async function start(): Promise<{ sortie: SortieProcess; api: Api }> {
  const sortie = await startSortieProcess({
    ...kubernetesSortieEnv(namespace!.name),
    SORTIE_APPS_FILE: DEMO_APPS,
    SORTIE_DB_PATH: path.join(scratch.dir, 'sortie.db'),
    SORTIE_AUTH: 'disabled',
  });
  children.push(sortie);
  return { sortie, api: new Api(sortie.url) };
}

/** Live sessions as the database holds them, read from the file itself. */
function liveSessionsInDb(): Set<string> {
  const db = new Database(path.join(scratch.dir, 'sortie.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("select id from sessions where status in ('creating', 'running')").all() as Array<{ id: string }>;
    return new Set(rows.map((r) => r.id));
  } finally {
    db.close();
  }
}

/** Sessions whose Sortie pod is in the namespace and not on its way out. */
async function sessionPodsInCluster(): Promise<Set<string>> {
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: namespace!.name, labelSelector: SESSION_POD_SELECTOR });
  return new Set(pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata!.labels![LABEL_SESSION_ID]!));
}

test('after SIGKILL and changes behind its back, a restart adopts, ends and removes until the database and the namespace agree', async () => {
  const core = kc.makeApiClient(CoreV1Api);
  const first = await start();
  const kept = await first.api.launch('xterm', 'alice');
  const lost = await first.api.launch('xterm', 'bob');
  await first.api.waitFor(kept.id, 'running', 120_000);
  await first.api.waitFor(lost.id, 'running', 120_000);

  first.sortie.child.kill('SIGKILL');
  assert.equal((await exitOf(first.sortie.child)).signal, 'SIGKILL');

  // Behind its back: one session's pod is deleted, and a pod nobody launched appears
  // carrying Sortie's session labels (a stray left by, say, a crash between create and insert).
  await core.deleteNamespacedPod({ name: lost.pod_name, namespace: namespace!.name, gracePeriodSeconds: 0 });
  const strayId = randomUUID();
  const strayName = workloadName(strayId);
  await core.createNamespacedPod({
    namespace: namespace!.name,
    body: {
      metadata: {
        name: strayName,
        labels: { [LABEL_MANAGED_BY]: 'sortie', [LABEL_COMPONENT]: 'session', [LABEL_SESSION_ID]: strayId, [LABEL_APP_ID]: 'xterm' },
      },
      spec: {
        containers: [{ name: 'app', image: DEMO_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'], resources: { requests: { cpu: '10m', memory: '16Mi' } } }],
        automountServiceAccountToken: false,
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 1,
      },
    },
  });
  await waitForPodGone(kc, namespace!.name, lost.pod_name);
  assert.ok(await readPod(kc, namespace!.name, strayName), 'the stray pod exists before the restart');
  assert.deepEqual(liveSessionsInDb(), new Set([kept.id, lost.id]), 'the killed Sortie left both sessions live in its database');

  const second = await start();
  const keptNow = await second.api.session(kept.id);
  assert.equal(keptNow.status, 'running', 'the session whose pod survived is adopted');
  const desktop = await readDesktop(second.sortie.url.replace(/^http/, 'ws') + keptNow.websocket_url);
  assert.equal(desktop.banner, 'RFB 003.008');
  assert.ok(desktop.nonBlank, 'the adopted session still streams its desktop');

  const lostNow = await second.api.session(lost.id);
  assert.ok(lostNow.status === 'failed' || lostNow.status === 'terminated', `the session whose pod was deleted ended (${lostNow.status})`);
  assert.ok(lostNow.reason, 'with a reason');

  // Removal starts during reconciliation, before Sortie listens: the stray is already on its
  // way out, and the pods that are not are exactly the live sessions.
  const stray = await readPod(kc, namespace!.name, strayName);
  assert.ok(stray === undefined || stray.metadata?.deletionTimestamp, 'the restart is removing the stray pod');
  const inDb = liveSessionsInDb();
  const inCluster = await sessionPodsInCluster();
  assert.deepEqual(inDb, new Set([kept.id]));
  assert.deepEqual(inCluster, inDb, 'live sessions in the database are exactly the Sortie pods in the namespace');

  // Clean up through Sortie, then stop it as an operator would. The stray and the kept
  // session's pod each wait out the kubelet's teardown (over ten seconds here): side by side.
  const ended = await second.api.request<{ status: string }>('DELETE', `/api/sessions/${kept.id}`);
  assert.equal(ended.body.status, 'terminated');
  await Promise.all([waitForPodGone(kc, namespace!.name, strayName), waitForPodGone(kc, namespace!.name, kept.pod_name)]);
  await waitFor(async () => (await sessionPodsInCluster()).size === 0, { what: 'no Sortie pods left', timeoutMs: 10_000 });
  second.sortie.child.kill('SIGTERM');
  assert.equal((await exitOf(second.sortie.child)).code, 0, second.sortie.stderr());
});
