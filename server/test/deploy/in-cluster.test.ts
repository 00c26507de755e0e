/**
 * Sortie as an operator deploys it: the image built from the Dockerfile (with buildah, by
 * `scripts/local-cluster.sh build-image sortie`), imported into the local cluster, installed with the Helm chart, running in a pod with
 * only its ServiceAccount's permissions. A session launched through it must reach
 * `running` and its pod must go when the session ends; `helm test` must pass through the
 * Service; `helm uninstall` must leave nothing running.
 *
 * The local cluster has no kube-proxy and no DNS:
 * - Sortie reaches the API server at KUBERNETES_SERVICE_HOST=10.96.0.1:443 like in any
 *   cluster; scripts/local-cluster.sh translates that address to the API server
 *   (iptables DNAT to the node's address, a SAN of the serving certificate).
 * - This test reaches Sortie at its pod IP, which the host routes to directly.
 * - For `helm test`, which goes through the Service, the test stands in for kube-proxy
 *   for that one Service (a DNAT of its ClusterIP:80 to Sortie's pod IP:8080) and
 *   removes the rule afterwards. The test pod finds the ClusterIP in the Service's
 *   environment variables, so it needs no DNS either.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import { CHART, Cluster, MANIFESTS, requireCluster, run, runOk, type K8sObject } from './tools.js';
import { REPO_ROOT } from '../support/paths.js';
import { waitFor } from '../support/wait.js';

const NAMESPACE = 'sortie';
const RELEASE = 'sortie';
const IMAGE = 'ghcr.io/rjsadow/sortie:latest';
const SIDECAR_IMAGE = 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest';
const DEMO_IMAGE = 'docker.io/library/sortie-demo-apps:latest';
const SERVER_PODS = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=server`;
const SESSION_PODS = 'app.kubernetes.io/managed-by=sortie,app.kubernetes.io/component=session';
// Our own iptables chain (local-cluster.sh `down` also removes SORTIE-* chains).
const PROXY_CHAIN = 'SORTIE-DEPLOY-TEST';

const localCluster = (...args: string[]) => run('bash', [path.join(REPO_ROOT, 'scripts', 'local-cluster.sh'), ...args]);

describe('Sortie deployed with its Helm chart into the local cluster', () => {
  let cluster: Cluster;
  let installed = false;
  let podIp = '';
  let token: string | undefined;

  const api = async (method: string, urlPath: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`http://${podIp}:8080${urlPath}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let json: any = text;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON; asserted on by callers
    }
    return { status: res.status, body: json };
  };

  /** What an operator would look at when the pod does not come up. */
  const diagnostics = async () => {
    const described = await cluster.kubectl(['describe', 'pods', '-n', NAMESPACE, '-l', SERVER_PODS]);
    const logs = await cluster.kubectl(['logs', '-n', NAMESPACE, '-l', SERVER_PODS, '--tail=50']);
    return `--- kubectl describe pods\n${described.stdout}${described.stderr}\n--- kubectl logs\n${logs.stdout}${logs.stderr}`;
  };

  const removeServiceProxy = async () => {
    const jumps: Array<[string, string]> = [['PREROUTING', PROXY_CHAIN], ['OUTPUT', PROXY_CHAIN], ['POSTROUTING', `${PROXY_CHAIN}-POST`]];
    for (const [hook, chain] of jumps) {
      // -D removes one jump per call; repeat until none is left.
      while ((await run('iptables', ['-t', 'nat', '-D', hook, '-j', chain])).status === 0) continue;
    }
    for (const chain of [PROXY_CHAIN, `${PROXY_CHAIN}-POST`]) {
      await run('iptables', ['-t', 'nat', '-F', chain]);
      await run('iptables', ['-t', 'nat', '-X', chain]);
    }
  };

  const uninstall = async () => {
    const res = await cluster.helm(['uninstall', RELEASE, '-n', NAMESPACE, '--wait', '--timeout', '2m']);
    if (res.status !== 0 && !/not found/i.test(res.stderr)) throw new Error(`helm uninstall: ${res.stderr}`);
  };

  before(async () => {
    cluster = new Cluster(requireCluster());
    assert.equal(process.getuid?.(), 0, 'building and importing the image needs root (buildah, ctr)');
    const images = await localCluster('ctr', 'images', 'ls', '-q');
    for (const image of [SIDECAR_IMAGE, DEMO_IMAGE]) {
      assert.ok(images.stdout.split('\n').includes(image), `the local cluster lacks ${image}: scripts/local-cluster.sh up imports it`);
    }
    // A release left by an interrupted run would hold the names this test installs.
    await uninstall();
    await removeServiceProxy();
  });

  after(async () => {
    await removeServiceProxy().catch(() => undefined);
    if (installed) await uninstall().catch(() => undefined);
    await cluster?.kubectl(['delete', 'namespace', NAMESPACE, '--wait=false']).catch(() => undefined);
  });

  test('the Dockerfile builds the image, and it is imported', { timeout: 30 * 60_000 }, async (t) => {
    const started = Date.now();
    const res = await runOk('bash', [path.join(REPO_ROOT, 'scripts', 'local-cluster.sh'), 'build-image', 'sortie'], { timeoutMs: 30 * 60_000 });
    const archive = res.stdout.trim().split('\n').at(-1)!;
    assert.ok(existsSync(archive), `the script printed no archive path:\n${res.stdout}`);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const megabytes = (statSync(archive).size / 1024 / 1024).toFixed(0);
    t.diagnostic(`image ${IMAGE}: ${archive}, ${megabytes} MiB, built/imported in ${seconds} s`);
    const images = await localCluster('ctr', 'images', 'ls', '-q');
    assert.ok(images.stdout.split('\n').includes(IMAGE), `${IMAGE} is not in the cluster's containerd after the import`);
  });

  test('helm install: Sortie becomes Ready running as its ServiceAccount', { timeout: 6 * 60_000 }, async () => {
    await cluster.helmOk([
      'install', RELEASE, CHART,
      '--namespace', NAMESPACE, '--create-namespace',
      '--set', 'image.pullPolicy=IfNotPresent',
      '--set', `vncSidecarImage=${SIDECAR_IMAGE}`,
      '--set', 'sessionImagePullPolicy=IfNotPresent',
      // No StorageClass in the local cluster: the database lives on an emptyDir here.
      '--set', 'persistence.enabled=false',
    ], { timeoutMs: 5 * 60_000 });
    installed = true;

    try {
      await waitFor(async () => {
        const pods = await cluster.json<{ items: any[] }>(['get', 'pods', '-n', NAMESPACE, '-l', SERVER_PODS]);
        const pod = pods.items.find((p) => !p.metadata.deletionTimestamp);
        const ready = pod?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
        if (ready) podIp = pod.status.podIP;
        return Boolean(ready);
      }, { what: 'Sortie\'s pod to be Ready', timeoutMs: 180_000, intervalMs: 1000 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics()}`);
    }

    const pod = (await cluster.json<{ items: any[] }>(['get', 'pods', '-n', NAMESPACE, '-l', SERVER_PODS])).items[0];
    assert.equal(pod.spec.serviceAccountName, 'sortie');
    assert.equal(pod.spec.containers[0].image, IMAGE);
    const health = await api('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal((await api('GET', '/readyz')).status, 200);
  });

  test('a session launched through the in-cluster Sortie reaches running, and its pod goes when it ends', { timeout: 6 * 60_000 }, async () => {
    assert.ok(podIp, 'Sortie is not running (see the previous test)');
    const config = await api('GET', '/api/auth/config');
    if (config.status === 200 && config.body.enabled) {
      const secret = await cluster.json<{ data: Record<string, string> }>(['get', 'secret', 'sortie-auth', '-n', NAMESPACE]);
      const password = Buffer.from(secret.data['admin-password']!, 'base64').toString('utf8');
      const login = await api('POST', '/api/auth/login', { username: 'admin', password });
      assert.equal(login.status, 200, `sign-in with the chart's admin Secret failed: ${JSON.stringify(login.body)}`);
      token = login.body.access_token;
    }

    const apps = await api('GET', '/api/apps');
    assert.equal(apps.status, 200, JSON.stringify(apps.body));
    assert.ok(apps.body.applications.some((a: { id: string }) => a.id === 'xterm'), 'the demo catalog from the ConfigMap is not served');

    const created = await api('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const session = created.body as { id: string; pod_name: string; status: string };
    assert.equal(session.status, 'creating');

    let last: any;
    try {
      await waitFor(async () => {
        last = (await api('GET', `/api/sessions/${session.id}`)).body;
        if (last.status === 'failed' || last.status === 'terminated') throw new Error(`session ended: ${JSON.stringify(last)}`);
        return last.status === 'running';
      }, { what: 'the session to be running', timeoutMs: 150_000, intervalMs: 500 });
    } catch (err) {
      throw new Error(`${(err as Error).message}; last: ${JSON.stringify(last)}\n${await diagnostics()}`);
    }

    // The pod exists in Sortie's namespace, created under Sortie's own identity.
    const pod = await cluster.json<any>(['get', 'pod', session.pod_name, '-n', NAMESPACE]);
    assert.equal(pod.metadata.labels['app.kubernetes.io/managed-by'], 'sortie');
    assert.equal(pod.metadata.labels['app.kubernetes.io/component'], 'session');
    assert.ok(pod.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True'));

    const ended = await api('DELETE', `/api/sessions/${session.id}`);
    assert.ok(ended.status === 200 || ended.status === 204, JSON.stringify(ended.body));
    await waitFor(async () => !(await cluster.exists('pod', session.pod_name, NAMESPACE)), { what: `session pod ${session.pod_name} to be gone`, timeoutMs: 90_000, intervalMs: 500 });
    const after = await api('GET', `/api/sessions/${session.id}`);
    assert.equal(after.body.status, 'terminated');
  });

  test('helm test passes through the Service', { timeout: 5 * 60_000 }, async (t) => {
    assert.ok(podIp, 'Sortie is not running (see the earlier tests)');
    const service = await cluster.json<any>(['get', 'service', RELEASE, '-n', NAMESPACE]);
    const clusterIp: string = service.spec.clusterIP;
    // The kube-proxy stand-in: ClusterIP:80 -> pod:8080, masqueraded so that replies from
    // Sortie's pod (on the same bridge as the test pod) come back through the host.
    await runOk('iptables', ['-t', 'nat', '-N', PROXY_CHAIN]);
    await runOk('iptables', ['-t', 'nat', '-N', `${PROXY_CHAIN}-POST`]);
    await runOk('iptables', ['-t', 'nat', '-A', PROXY_CHAIN, '-d', `${clusterIp}/32`, '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', `${podIp}:8080`]);
    await runOk('iptables', ['-t', 'nat', '-A', `${PROXY_CHAIN}-POST`, '-d', `${podIp}/32`, '-p', 'tcp', '--dport', '8080', '-m', 'conntrack', '--ctstate', 'DNAT', '--ctorigdst', clusterIp, '-j', 'MASQUERADE']);
    await runOk('iptables', ['-t', 'nat', '-I', 'PREROUTING', '-j', PROXY_CHAIN]);
    await runOk('iptables', ['-t', 'nat', '-I', 'OUTPUT', '-j', PROXY_CHAIN]);
    await runOk('iptables', ['-t', 'nat', '-I', 'POSTROUTING', '-j', `${PROXY_CHAIN}-POST`]);

    const res = await cluster.helm(['test', RELEASE, '-n', NAMESPACE, '--logs', '--timeout', '3m'], { timeoutMs: 4 * 60_000 });
    const output = `${res.stdout}\n${res.stderr}`;
    if (res.status !== 0) {
      const logs = await cluster.kubectl(['logs', '-n', NAMESPACE, `${RELEASE}-test-connection`]);
      assert.fail(`helm test failed:\n${output}\n--- test pod logs\n${logs.stdout}${logs.stderr}`);
    }
    assert.match(output, /Succeeded/);
    // Through the ClusterIP (from the Service's environment variables), not a fallback.
    const line = /Sortie at (\S+): healthy, \d+ apps in the catalog/.exec(output);
    assert.ok(line, `the test pod did not report success:\n${output}`);
    assert.equal(line[1], `http://${clusterIp}:80`);
    t.diagnostic(`helm test pod: ${line[0]}`);
  });

  test('helm uninstall leaves no Sortie or session pods running', { timeout: 4 * 60_000 }, async (t) => {
    const started = Date.now();
    await uninstall();
    installed = false;
    await waitFor(async () => {
      const pods = await cluster.json<{ items: unknown[] }>(['get', 'pods', '-n', NAMESPACE, '-l', SERVER_PODS]);
      return pods.items.length === 0;
    }, { what: 'Sortie\'s pods to be gone', timeoutMs: 120_000, intervalMs: 1000 });
    t.diagnostic(`Sortie's pod gone ${Date.now() - started} ms after helm uninstall`);
    const sessions = await cluster.json<{ items: unknown[] }>(['get', 'pods', '-n', NAMESPACE, '-l', SESSION_PODS]);
    assert.equal(sessions.items.length, 0);
  });

  test('the raw manifests run Sortie too (kubectl apply -f deploy/kubernetes/)', { timeout: 5 * 60_000 }, async () => {
    // As applied, except that the data volume is an emptyDir: this cluster has no
    // StorageClass to bind the PersistentVolumeClaim (the manifest's comment says so).
    const objects = readdirSync(MANIFESTS).filter((f) => f.endsWith('.yaml')).sort()
      .flatMap((f) => loadAllYaml(readFileSync(path.join(MANIFESTS, f), 'utf8')) as K8sObject[])
      .filter((o) => o && o.kind !== 'PersistentVolumeClaim');
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const volumes = deployment.spec.template.spec.volumes as Array<Record<string, unknown>>;
    const data = volumes.findIndex((v) => v.name === 'data');
    volumes[data] = { name: 'data', emptyDir: {} };
    const stream = objects.map((o) => dumpYaml(o)).join('---\n');
    await cluster.kubectlOk(['apply', '-f', '-'], { input: stream });
    try {
      let ip = '';
      await waitFor(async () => {
        const pods = await cluster.json<{ items: any[] }>(['get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/name=sortie,app.kubernetes.io/component=server']);
        const pod = pods.items.find((p) => !p.metadata.deletionTimestamp);
        if (pod?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')) ip = pod.status.podIP;
        return Boolean(ip);
      }, { what: 'the raw Deployment\'s pod to be Ready', timeoutMs: 180_000, intervalMs: 1000 }).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await diagnostics()}`);
      });
      const res = await fetch(`http://${ip}:8080/readyz`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200);
    } finally {
      await cluster.kubectl(['delete', '-f', '-', '--wait=false'], { input: stream });
    }
  });
});
