import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { chownSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { FILES_PORT } from '../../src/runners/kubernetes/pod-spec.js';
import type { Api } from '../support/api.js';
import { startTestSortie, type TestSortie } from '../support/harness.js';
import { rawRequest } from '../support/raw-request.js';
import { waitFor } from '../support/wait.js';
import { adminKubeConfig, createTestNamespace, DEMO_IMAGE, kubernetesSortieEnv, readPod, SMALL_LIMITS, waitForPodGone } from './cluster.js';

// The session file API on the kubernetes runner, on the local cluster: Sortie reaches the
// home through the file endpoint in the pod's sidecar (no pods/exec), on the volume the app
// mounts as $HOME. The app writes files and plants links as a hostile app would; the API
// answers as it does on the local runner.

const ADMIN_PASSWORD = 'k8s-files-admin-password-1';
const PASSWORD = 'k8s-files-user-password-1';
const MiB = 1024 * 1024;

// In its home: a random file with its checksum, a folder, links to the node's /etc; then it
// waits for an uploaded inbox.bin and copies it, to show the upload reached the app's side.
const SCRIPT = [
  'cd "$HOME"',
  'head -c 300000 /dev/urandom > random.bin',
  'sha256sum random.bin | cut -d" " -f1 > random.sha256',
  'mkdir docs',
  'printf "from the app" > docs/note.txt',
  'ln -s /etc etc-link',
  'ln -s /etc/passwd passwd-link',
  'mkfifo pipe',
  'touch ready',
  'while [ ! -f inbox.bin ]; do sleep 0.2; done',
  'cp inbox.bin seen-by-app.bin',
  'stat -c "%u %a" inbox.bin > inbox.stat',
  'exec sleep infinity',
].join(' && ');
const APPS = [
  { id: 'filer', name: 'Filer', launch_type: 'container', container_image: DEMO_IMAGE, command: ['sh', '-c', SCRIPT], resource_limits: SMALL_LIMITS },
  { id: 'keeper', name: 'Keeper', launch_type: 'container', container_image: DEMO_IMAGE, command: ['sleep', 'infinity'], persistent_home: true, resource_limits: SMALL_LIMITS },
];
// The persistent home's volume: a hostPath PersistentVolume of a class of the test's own
// (the local cluster has no provisioner), a folder on this machine, the cluster's only node.
const HOST_ROOT = '/var/lib/sortie-test-homes';
let volume: string | undefined;

let kc: KubeConfig;
let core: CoreV1Api;
let namespace: { name: string; remove: () => Promise<void> };
let sortie: TestSortie;
let admin: Api;
let alice: Api;
let bob: Api;
let sessionId: string;
let podIp: string;

const q = encodeURIComponent;
const filesUrl = (id: string, p?: string) => `/api/sessions/${id}/files${p === undefined ? '' : `?path=${q(p)}`}`;
const contentUrl = (id: string, p: string) => `/api/sessions/${id}/files/content?path=${q(p)}`;
const as = (api: Api, method: string, urlPath: string, body?: Buffer, chunked = false) =>
  rawRequest(sortie.url, method, urlPath, { token: api.token!, ...(body ? { body } : {}), chunked });
const names = async (p?: string) => {
  const res = await as(alice, 'GET', filesUrl(sessionId, p));
  assert.equal(res.status, 200, res.body.toString());
  return (res.json.entries as Array<{ name: string }>).map((e) => e.name);
};
const download = async (p: string) => {
  const res = await as(alice, 'GET', contentUrl(sessionId, p));
  assert.equal(res.status, 200, `${p}: ${res.body.toString()}`);
  return res.body;
};

before(async () => {
  kc = await adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  namespace = await createTestNamespace(kc, 'files');
  volume = `${namespace.name}-home`;
  const dir = path.join(HOST_ROOT, volume);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, 1000, 1000); // a hostPath volume is mounted as it is: fsGroup does not apply
  await core.createPersistentVolume({
    body: {
      metadata: { name: volume, labels: { 'sortie.io/test': 'files' } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: `${namespace.name}-homes`,
        hostPath: { path: dir, type: 'Directory' },
      },
    },
  });
  sortie = await startTestSortie({
    name: 'k8s-files',
    apps: APPS,
    env: {
      ...kubernetesSortieEnv(namespace.name),
      SORTIE_AUTH: 'enabled',
      SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SORTIE_MAX_UPLOAD_MB: '1',
      SORTIE_MAX_SESSIONS_PER_USER: '10',
      SORTIE_HOME_STORAGE_CLASS: `${namespace.name}-homes`,
      SORTIE_HOME_SIZE: '1Gi',
    },
  });
  admin = await sortie.signIn('admin', ADMIN_PASSWORD);
  await admin.createUser('alice', PASSWORD);
  await admin.createUser('bob', PASSWORD);
  alice = await sortie.signIn('alice', PASSWORD);
  bob = await sortie.signIn('bob', PASSWORD);
  const session = await alice.launch('filer');
  sessionId = session.id;
  await alice.waitFor(sessionId, 'running', 90_000);
  podIp = (await readPod(kc, namespace.name, session.pod_name))!.status!.podIP!;
  await waitFor(async () => (await names()).includes('ready'), { what: 'the app to write its files', timeoutMs: 30_000, intervalMs: 200 });
});

after(async () => {
  await sortie?.cleanup();
  await namespace?.remove();
  if (volume) {
    await core.deletePersistentVolume({ name: volume }).catch(() => undefined);
    rmSync(path.join(HOST_ROOT, volume), { recursive: true, force: true });
  }
});

describe('the owner works with the files of a session pod', () => {
  test('lists the home and a folder, links as links, special files as "other"', async () => {
    const res = await as(alice, 'GET', filesUrl(sessionId));
    assert.equal(res.status, 200, res.body.toString());
    const byName = new Map((res.json.entries as Array<{ name: string; type: string; size: number; modified: string }>).map((e) => [e.name, e]));
    assert.equal(byName.get('random.bin')?.type, 'file');
    assert.equal(byName.get('random.bin')?.size, 300_000);
    assert.equal(byName.get('docs')?.type, 'directory');
    assert.equal(byName.get('etc-link')?.type, 'symlink');
    assert.equal(byName.get('pipe')?.type, 'other');
    assert.ok(!Number.isNaN(Date.parse(byName.get('random.bin')!.modified)));
    const docs = await as(alice, 'GET', filesUrl(sessionId, 'docs'));
    assert.deepEqual((docs.json.entries as Array<{ name: string; size: number }>).map((e) => [e.name, e.size]), [['note.txt', 12]]);
  });

  test('downloads a file the app wrote, byte for byte', async () => {
    const data = await download('random.bin');
    assert.equal(data.length, 300_000);
    assert.equal(createHash('sha256').update(data).digest('hex'), (await download('random.sha256')).toString().trim());
    assert.equal((await download('docs/note.txt')).toString(), 'from the app');
  });

  test('uploads a file, chunked: the app finds it in its home, its own and mode 0644', async () => {
    const data = randomBytes(700_000);
    const res = await as(alice, 'PUT', contentUrl(sessionId, 'inbox.bin'), data, true);
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(res.json, { path: 'inbox.bin', size: 700_000 });
    await waitFor(async () => (await names()).includes('inbox.stat'), { what: 'the app to copy the upload', timeoutMs: 20_000, intervalMs: 200 });
    assert.deepEqual(await download('seen-by-app.bin'), data, 'what the app read is what was uploaded');
    assert.equal((await download('inbox.stat')).toString().trim(), '1000 644');
    // With Content-Length, into a folder, under a name that needs encoding.
    const second = randomBytes(1000);
    assert.equal((await as(alice, 'PUT', contentUrl(sessionId, 'docs/résumé "1".bin'), second)).status, 200);
    assert.deepEqual(await download('docs/résumé "1".bin'), second);
  });

  test('an admin may reach the files of anyone\'s session', async () => {
    assert.equal((await as(admin, 'GET', filesUrl(sessionId))).status, 200);
  });
});

describe('refused, with the local runner\'s answers', () => {
  test('paths that leave the home: 400', async () => {
    for (const p of ['../escaped.txt', 'docs/../../escaped.txt', '/etc/escaped.txt']) {
      for (const [method, url] of [['GET', filesUrl(sessionId, p)], ['GET', contentUrl(sessionId, p)], ['PUT', contentUrl(sessionId, p)]] as const) {
        const res = await as(alice, method, url, method === 'PUT' ? Buffer.from('pwned') : undefined);
        assert.equal(res.status, 400, `${method} ${url}: ${res.body.toString()}`);
      }
    }
  });

  test('links the app planted are not followed, reading or writing: 400', async () => {
    for (const [method, url] of [
      ['GET', filesUrl(sessionId, 'etc-link')],
      ['GET', contentUrl(sessionId, 'etc-link/passwd')],
      ['GET', contentUrl(sessionId, 'passwd-link')],
      ['PUT', contentUrl(sessionId, 'etc-link/pwned.txt')],
      ['PUT', contentUrl(sessionId, 'passwd-link')],
    ] as const) {
      const res = await as(alice, method, url, method === 'PUT' ? Buffer.from('pwned\n') : undefined);
      assert.equal(res.status, 400, `${method} ${url}: ${res.body.toString()}`);
      assert.match(String(res.json.message), /symbolic link/);
    }
    const pipe = await as(alice, 'GET', contentUrl(sessionId, 'pipe'));
    assert.equal(pipe.status, 400);
    assert.match(String(pipe.json.message), /not a regular file/);
  });

  test('over SORTIE_MAX_UPLOAD_MB (1 here): 413 with or without Content-Length, the old file kept, nothing partial', async () => {
    const big = randomBytes(MiB + 1);
    for (const [p, chunked] of [['too-big.bin', false], ['too-big.bin', true], ['docs/note.txt', true]] as const) {
      const res = await as(alice, 'PUT', contentUrl(sessionId, p), big, chunked);
      assert.equal(res.status, 413, `${p}: ${res.body.toString()}`);
      assert.match(String(res.json.message), /upload limit of 1 MiB \(SORTIE_MAX_UPLOAD_MB\)/);
    }
    assert.equal((await download('docs/note.txt')).toString(), 'from the app');
    await waitFor(async () => !(await names()).some((n) => n.startsWith('.sortie-upload-') || n === 'too-big.bin'), { what: 'no partial upload to be left' });
    assert.equal((await as(alice, 'PUT', contentUrl(sessionId, 'exactly-1-mib.bin'), randomBytes(MiB), true)).status, 200);
  });

  test('a path that does not exist: 404', async () => {
    for (const [method, url] of [['GET', filesUrl(sessionId, 'no-such-folder')], ['GET', contentUrl(sessionId, 'no-such.txt')], ['PUT', contentUrl(sessionId, 'no-such-folder/x.txt')]] as const) {
      const res = await as(alice, method, url, method === 'PUT' ? Buffer.from('x') : undefined);
      assert.equal(res.status, 404, `${method} ${url}: ${res.body.toString()}`);
      assert.match(String(res.json.message), /does not exist/);
    }
  });

  test('another user\'s session: 404, as if it did not exist', async () => {
    for (const [method, url] of [['GET', filesUrl(sessionId)], ['GET', contentUrl(sessionId, 'random.bin')], ['PUT', contentUrl(sessionId, 'bob-was-here.txt')]] as const) {
      const res = await as(bob, method, url, method === 'PUT' ? Buffer.from('hi') : undefined);
      assert.equal(res.status, 404, `${method} ${url}`);
      assert.match(String(res.json.message), new RegExp(`No session with id "${sessionId}"`));
    }
    assert.ok(!(await names()).includes('bob-was-here.txt'));
  });

  test('the sidecar\'s port without the session\'s secret: 401, nothing read or written', async () => {
    const sidecar = `http://${podIp}:${FILES_PORT}`;
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer not-the-secret' }]) {
      for (const [method, urlPath] of [['GET', '/list?path='], ['GET', '/content?path=random.bin'], ['PUT', '/content?path=intruder.txt&max=100']] as const) {
        const res = await rawRequest(sidecar, method, urlPath, { headers, ...(method === 'PUT' ? { body: Buffer.from('hi') } : {}) });
        assert.equal(res.status, 401, `${method} ${urlPath} ${JSON.stringify(headers)}: ${res.body.toString()}`);
        assert.ok(!res.body.includes('from the app'));
      }
    }
    assert.ok(!(await names()).includes('intruder.txt'));
  });

  test('a session that is not running: 409', async () => {
    const other = await alice.launch('filer');
    await alice.waitFor(other.id, 'running', 90_000);
    await alice.end(other.id);
    for (const [method, url] of [['GET', filesUrl(other.id)], ['GET', contentUrl(other.id, 'random.bin')], ['PUT', contentUrl(other.id, 'late.txt')]] as const) {
      const res = await as(alice, method, url, method === 'PUT' ? Buffer.from('late') : undefined);
      assert.equal(res.status, 409, `${method} ${url}`);
      assert.match(String(res.json.message), /only while it is running/);
    }
  });
});

test('with persistent_home the sidecar serves the user\'s claim: an upload is there in the next session', async () => {
  const data = randomBytes(200_000);
  const first = await alice.launch('keeper');
  await alice.waitFor(first.id, 'running', 90_000);
  const put = await as(alice, 'PUT', contentUrl(first.id, 'kept.bin'), data, true);
  assert.equal(put.status, 200, put.body.toString());
  await alice.end(first.id);
  await waitForPodGone(kc, namespace.name, first.pod_name);
  // On the claim's volume, not in the pod.
  assert.deepEqual(readFileSync(path.join(HOST_ROOT, volume!, 'kept.bin')), data);

  const second = await alice.launch('keeper');
  await alice.waitFor(second.id, 'running', 90_000);
  const back = await as(alice, 'GET', contentUrl(second.id, 'kept.bin'));
  assert.equal(back.status, 200, back.body.toString());
  assert.deepEqual(back.body, data);
  await alice.end(second.id);
});
