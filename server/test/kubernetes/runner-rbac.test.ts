import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  loadAllYaml,
  RbacAuthorizationV1Api,
  type V1Role,
  type V1RoleBinding,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { ConfigError } from '../../src/errors.js';
import { apiStatusCode } from '../../src/runners/kubernetes/api-errors.js';
import { adminKubeConfig, createTestNamespace, EventLog, launchSpec, makeRunner, testApp, waitForPodGone } from './cluster.js';
import { REPO_ROOT } from '../support/paths.js';
import { waitFor } from '../support/wait.js';
import { readDesktop } from './vnc.js';

const RBAC_FILE = path.join(REPO_ROOT, 'deploy', 'kubernetes', 'rbac.yaml');

let admin: KubeConfig;
let namespace: { name: string; remove: () => Promise<void> };
let sortie: KubeConfig;

/** The objects of deploy/kubernetes/rbac.yaml, moved into the test's namespace. */
function rbacManifests(ns: string): { serviceAccount: V1ServiceAccount; role: V1Role; roleBinding: V1RoleBinding } {
  const docs = loadAllYaml(readFileSync(RBAC_FILE, 'utf8')) as Array<{ kind: string; metadata: { namespace?: string } }>;
  const pick = <T>(kind: string): T => {
    const doc = docs.find((d) => d.kind === kind);
    assert.ok(doc, `${kind} in rbac.yaml`);
    doc.metadata.namespace = ns;
    return doc as T;
  };
  const roleBinding = pick<V1RoleBinding>('RoleBinding');
  for (const subject of roleBinding.subjects ?? []) subject.namespace = ns;
  return { serviceAccount: pick('ServiceAccount'), role: pick('Role'), roleBinding };
}

/** The ServiceAccount's token, from the secret the 1.20 token controller creates for it. */
async function serviceAccountToken(kc: KubeConfig, ns: string, account: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  let token: string | undefined;
  await waitFor(async () => {
    const secrets = await core.listNamespacedSecret({ namespace: ns, fieldSelector: 'type=kubernetes.io/service-account-token' });
    const secret = secrets.items.find((s) => s.metadata?.annotations?.['kubernetes.io/service-account.name'] === account && s.data?.['token']);
    if (secret) token = Buffer.from(secret.data!['token']!, 'base64').toString('utf8');
    return token !== undefined;
  }, { what: `a token secret for ServiceAccount ${account}`, timeoutMs: 30_000, intervalMs: 100 });
  return token!;
}

function kubeConfigWithToken(adminKc: KubeConfig, token: string, ns: string): KubeConfig {
  const cluster = adminKc.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: 'cluster' }],
    users: [{ name: 'sortie', token }],
    contexts: [{ name: 'sortie', cluster: 'cluster', user: 'sortie', namespace: ns }],
    currentContext: 'sortie',
  });
  return kc;
}

before(async () => {
  admin = await adminKubeConfig();
  namespace = await createTestNamespace(admin, 'rbac');
  const { serviceAccount, role, roleBinding } = rbacManifests(namespace.name);
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace: namespace.name, body: serviceAccount });
  await rbac.createNamespacedRole({ namespace: namespace.name, body: role });
  await rbac.createNamespacedRoleBinding({ namespace: namespace.name, body: roleBinding });
  sortie = kubeConfigWithToken(admin, await serviceAccountToken(admin, namespace.name, 'sortie'), namespace.name);
});

after(async () => {
  await namespace?.remove();
});

test('the Role grants exactly create, delete, list, patch and watch on pods, and create and delete on claims', () => {
  const { role } = rbacManifests('x');
  assert.deepEqual(role.rules, [
    { apiGroups: [''], resources: ['pods'], verbs: ['create', 'delete', 'list', 'patch', 'watch'] },
    { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['create', 'delete'] },
  ]);
});

test('a persistent home is made and removed with only the Role', async () => {
  const runner = makeRunner(sortie, namespace.name);
  const core = admin.makeApiClient(CoreV1Api);
  try {
    await runner.start(() => undefined);
    const spec = launchSpec(testApp({ persistent_home: true }), 'rbac-user');
    await runner.launch(spec);
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'sortie-home-rbac-user', namespace: namespace.name });
    assert.equal(claim.metadata?.annotations?.['sortie.io/user-id'], 'rbac-user');
    // A second launch finds the home there and uses it.
    const again = launchSpec(testApp({ persistent_home: true }), 'rbac-user');
    await runner.launch(again);
    await runner.stop(spec.sessionId);
    await runner.stop(again.sessionId);
    await waitForPodGone(admin, namespace.name, spec.workloadName);
    await waitForPodGone(admin, namespace.name, again.workloadName);
    assert.equal(await runner.homes.delete('rbac-user'), true);
    assert.equal(await runner.homes.delete('nobody-here'), false);
  } finally {
    await runner.close();
  }
});

test('the whole session flow works with only the Role from deploy/kubernetes/rbac.yaml', async () => {
  const runner = makeRunner(sortie, namespace.name);
  const events = new EventLog();
  try {
    assert.deepEqual(await runner.start(events.listener), []);
    const spec = launchSpec();
    await runner.launch(spec);
    const ready = await events.next(spec.sessionId);
    assert.equal(ready.event.type, 'ready', JSON.stringify(ready.event));
    assert.ok(ready.event.type === 'ready');
    const desktop = await readDesktop(`ws://${ready.event.endpoint.host}:${ready.event.endpoint.port}/`, spec.streamSecret);
    assert.equal(desktop.banner, 'RFB 003.008');
    assert.equal(desktop.accepted, true);
    // A claimed warm-pool session's owner is named on its pod (patch), and listed (list).
    await runner.assignOwner(spec.sessionId, 'rbac-claimer');
    const pod = await admin.makeApiClient(CoreV1Api).readNamespacedPod({ name: spec.workloadName, namespace: namespace.name });
    assert.equal(pod.metadata?.annotations?.['sortie.io/user-id'], 'rbac-claimer');
    assert.deepEqual((await runner.list()).map((w) => w.sessionId), [spec.sessionId]);
    await runner.stop(spec.sessionId);
    await waitForPodGone(admin, namespace.name, spec.workloadName);
    await runner.stop(spec.sessionId); // the idempotent 404 path works with the Role too
    assert.deepEqual(events.all.map((r) => r.event.type), ['ready']);
  } finally {
    await runner.close();
  }
});

test('anything outside the Role is refused with 403', async () => {
  const core = sortie.makeApiClient(CoreV1Api);
  const apps = sortie.makeApiClient(AppsV1Api);
  const refused = async (what: string, call: () => Promise<unknown>) => {
    await assert.rejects(call(), (err) => {
      assert.equal(apiStatusCode(err), 403, `${what}: ${String(err)}`);
      return true;
    });
  };
  await refused('list secrets', () => core.listNamespacedSecret({ namespace: namespace.name }));
  await refused('create a deployment', () =>
    apps.createNamespacedDeployment({
      namespace: namespace.name,
      body: {
        metadata: { name: 'nope' },
        spec: {
          selector: { matchLabels: { a: 'b' } },
          template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'sortie-demo-apps:latest' }] } },
        },
      },
    }),
  );
  await refused('get a pod (Sortie never reads single pods)', () => core.readNamespacedPod({ name: 'sortie-session-x', namespace: namespace.name }));
  await refused('replace a pod (Sortie patches one annotation, never the whole pod)', () =>
    core.replaceNamespacedPod({ name: 'sortie-session-x', namespace: namespace.name, body: { metadata: { name: 'sortie-session-x' } } }),
  );
  await refused('patch a claim', () => core.patchNamespacedPersistentVolumeClaim({ name: 'sortie-home-x', namespace: namespace.name, body: [] }));
  await refused('list pods in another namespace', () => core.listNamespacedPod({ namespace: 'default' }));
  await refused('list events', () => core.listNamespacedEvent({ namespace: namespace.name }));
});

test('a runner without pod permissions fails to start with a setup message', async () => {
  const runner = makeRunner(sortie, 'default');
  await assert.rejects(runner.start(() => undefined), (err: Error) => {
    assert.ok(err instanceof ConfigError, err.message);
    assert.match(err.message, /^Sortie may not list pods in namespace "default" \(HTTP 403; apply deploy\/kubernetes\/rbac.yaml\)/);
    return true;
  });
  await runner.close();
});
