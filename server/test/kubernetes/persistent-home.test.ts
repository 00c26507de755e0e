import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { startTestSortie, type TestSortie } from '../support/harness.js';
import { waitFor } from '../support/wait.js';
import { adminKubeConfig, createTestNamespace, DEMO_IMAGE, kubernetesSortieEnv, SMALL_LIMITS, waitForPodGone } from './cluster.js';

// Persistent homes on real PersistentVolumes: the local cluster has no provisioner, so the
// test makes hostPath volumes of a class of its own (on this machine, the cluster's only
// node) and Sortie's claims bind to them the way they would to a provisioner's.

// Each launch says what it found in the home, then leaves a line of its own.
const remember = (line: string) => ['sh', '-c', `cat "$HOME/notes.txt" > "$HOME/found.txt" 2>/dev/null; echo ${line} >> "$HOME/notes.txt"; exec xterm`];
const APPS = [
  { id: 'notes', name: 'Notes', launch_type: 'container', container_image: DEMO_IMAGE, command: remember('notes'), persistent_home: true, resource_limits: SMALL_LIMITS },
  { id: 'editor', name: 'Editor', launch_type: 'container', container_image: DEMO_IMAGE, command: remember('editor'), persistent_home: true, resource_limits: SMALL_LIMITS },
  { id: 'scratch', name: 'Scratch', launch_type: 'container', container_image: DEMO_IMAGE, command: remember('scratch'), resource_limits: SMALL_LIMITS },
];
const HOST_ROOT = '/var/lib/sortie-test-homes';

let kc: KubeConfig;
let core: CoreV1Api;
let namespace: { name: string; remove: () => Promise<void> };
let storageClass: string;
const volumes: string[] = [];
let sortie: TestSortie | undefined;
const stopped: TestSortie[] = [];

before(async () => {
  kc = await adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  namespace = await createTestNamespace(kc, 'home');
  storageClass = `${namespace.name}-homes`;
  // Two volumes: one for each user's home. The folders belong to the session user (UID
  // 1000): a hostPath volume is mounted as it is, fsGroup does not apply.
  for (const n of [1, 2]) {
    const name = `${namespace.name}-home-${n}`;
    const dir = path.join(HOST_ROOT, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, 1000, 1000);
    await core.createPersistentVolume({
      body: {
        metadata: { name, labels: { 'sortie.io/test': 'home' } },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: storageClass,
          hostPath: { path: dir, type: 'Directory' },
        },
      },
    });
    volumes.push(name);
  }
});

after(async () => {
  await sortie?.cleanup();
  for (const old of stopped) await old.cleanup();
  await namespace?.remove();
  for (const name of volumes) {
    await core.deletePersistentVolume({ name }).catch(() => undefined);
    rmSync(path.join(HOST_ROOT, name), { recursive: true, force: true });
  }
});

function start(dir?: string): Promise<TestSortie> {
  return startTestSortie({
    name: 'k8s-home',
    apps: APPS,
    ...(dir ? { dir } : {}),
    env: {
      ...kubernetesSortieEnv(namespace.name),
      SORTIE_HOME_STORAGE_CLASS: storageClass,
      SORTIE_HOME_SIZE: '1Gi',
    },
  });
}

/** The folder on this machine behind a user's home claim. */
async function homeOnHost(user: string): Promise<string> {
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: `sortie-home-${user}`, namespace: namespace.name });
  const volume = await waitFor(
    async () => (await core.readNamespacedPersistentVolumeClaim({ name: claim.metadata!.name!, namespace: namespace.name })).spec?.volumeName,
    { what: `the home of ${user} to be bound`, timeoutMs: 30_000, intervalMs: 200 },
  );
  assert.ok(volumes.includes(volume), `bound to one of the test's volumes, not ${volume}`);
  return path.join(HOST_ROOT, volume);
}

async function runOnce(s: TestSortie, appId: string, user: string): Promise<string> {
  const session = await s.api.launch(appId, user);
  await s.api.waitFor(session.id, 'running', 90_000);
  const ended = await s.api.request('DELETE', `/api/sessions/${session.id}`);
  assert.equal(ended.status, 200);
  await waitForPodGone(kc, namespace.name, session.pod_name);
  return session.id;
}

test('a file left in one session is there in the next, across a restart of Sortie and across apps; another user never sees it', async () => {
  sortie = await start();
  await runOnce(sortie, 'notes', 'alice');
  const alicesHome = await homeOnHost('alice');
  assert.equal(readFileSync(path.join(alicesHome, 'notes.txt'), 'utf8'), 'notes\n', 'the first session wrote into the claim');

  // Sortie restarts between the two sessions; the home is the cluster's, not Sortie's.
  await sortie.stop();
  stopped.push(sortie);
  sortie = await start(stopped[0]!.dir);

  // Another app with a persistent home, same user: the same home, as it was left.
  await runOnce(sortie, 'editor', 'alice');
  assert.equal(readFileSync(path.join(alicesHome, 'found.txt'), 'utf8'), 'notes\n', 'the second session found what the first left');
  assert.equal(readFileSync(path.join(alicesHome, 'notes.txt'), 'utf8'), 'notes\neditor\n');

  // Bob gets a home of his own: nothing of Alice's is in it.
  await runOnce(sortie, 'notes', 'bob');
  const bobsHome = await homeOnHost('bob');
  assert.notEqual(bobsHome, alicesHome);
  assert.equal(readFileSync(path.join(bobsHome, 'found.txt'), 'utf8'), '', 'bob starts empty');
  assert.equal(readFileSync(path.join(bobsHome, 'notes.txt'), 'utf8'), 'notes\n');

  // An app without persistent_home gets a home that goes with the pod, and leaves Alice's alone.
  await runOnce(sortie, 'scratch', 'alice');
  assert.equal(readFileSync(path.join(alicesHome, 'notes.txt'), 'utf8'), 'notes\neditor\n');
});

test('an admin removes a user\'s home, never while a session of that user is in it', async () => {
  assert.ok(sortie);
  const live = await sortie.api.launch('notes', 'alice');
  await sortie.api.waitFor(live.id, 'running', 90_000);
  const refused = await sortie.api.request<{ error: string; message: string }>('DELETE', '/api/admin/users/alice/home');
  assert.equal(refused.status, 409);
  assert.match(refused.body.message, /live session .*end it first/);
  await core.readNamespacedPersistentVolumeClaim({ name: 'sortie-home-alice', namespace: namespace.name });

  await sortie.api.request('DELETE', `/api/sessions/${live.id}`);
  await waitForPodGone(kc, namespace.name, live.pod_name);
  const removed = await sortie.api.request('DELETE', '/api/admin/users/alice/home');
  assert.equal(removed.status, 204);
  await waitFor(
    async () => {
      try {
        await core.readNamespacedPersistentVolumeClaim({ name: 'sortie-home-alice', namespace: namespace.name });
        return false;
      } catch {
        return true;
      }
    },
    { what: "alice's claim to be gone", timeoutMs: 30_000, intervalMs: 200 },
  );
  const again = await sortie.api.request<{ error: string; message: string }>('DELETE', '/api/admin/users/alice/home');
  assert.equal(again.status, 404);
  assert.match(again.body.message, /no persistent home/);
  // Bob's is untouched.
  await core.readNamespacedPersistentVolumeClaim({ name: 'sortie-home-bob', namespace: namespace.name });
  assert.ok(existsSync(path.join(HOST_ROOT, volumes[0]!)));
});
