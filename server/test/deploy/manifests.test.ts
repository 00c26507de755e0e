/**
 * The deployment artifacts against the real tools and the real API server: helm lint,
 * the values schema, every rendered variant of the chart and the raw manifests accepted
 * by a server-side dry run, and the kind setup script checked by bash and shellcheck.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadAllYaml } from '@kubernetes/client-node';
import { CHART, Cluster, kinds, MANIFESTS, requireCluster, requireHelm, run, runOk, type K8sObject } from './tools.js';
import { REPO_ROOT } from '../support/paths.js';
import { FILES_PORT, WEBSOCKIFY_PORT } from '../../src/runners/kubernetes/pod-spec.js';
import { loadConfig } from '../../src/config/config.js';

const NAMESPACE = 'sortie';

describe('Helm chart without a cluster', () => {
  let helm: string;
  /** The chart rendered with `helm template` and these --set arguments, as objects. */
  const renderChart = async (...set: string[]) => loadAllYaml((await runOk(helm, ['template', 'sortie', CHART, '-n', NAMESPACE, ...set])).stdout) as K8sObject[];
  before(() => {
    helm = requireHelm();
  });

  test('helm lint --strict passes', async () => {
    const res = await runOk(helm, ['lint', '--strict', CHART]);
    assert.match(res.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test('values.yaml holds the seed’s values with the seed’s defaults', async () => {
    const res = await runOk(helm, ['show', 'values', CHART]);
    const values = loadAllYaml(res.stdout)[0] as Record<string, any>;
    assert.equal(values.image.repository, 'ghcr.io/rjsadow/sortie');
    assert.equal(values.image.tag, 'latest');
    assert.equal(values.replicaCount, 1);
    assert.equal(values.ingress.enabled, false);
    assert.equal(values.ingress.host, 'sortie.example.com');
    assert.equal(values.networkPolicy.enabled, true);
    assert.equal(values.resourceQuota.enabled, true);
    assert.equal(values.sessionTimeout, 120);
    assert.equal(values.sessionCleanupInterval, 5);
    assert.equal(values.podReadyTimeout, 120);
    assert.equal(values.vncSidecarImage, 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest');
  });

  test('the schema rejects a wrong-typed replicaCount and names the field', async () => {
    const res = await run(helm, ['template', 'sortie', CHART, '--set', 'replicaCount=two']);
    assert.notEqual(res.status, 0, 'helm template accepted replicaCount=two');
    assert.match(res.stderr, /\/replicaCount/);
    assert.match(res.stderr, /want integer/);
  });

  test('the schema rejects a string for ingress.enabled and names the field', async () => {
    const res = await run(helm, ['template', 'sortie', CHART, '--set-string', 'ingress.enabled=yes']);
    assert.notEqual(res.status, 0, 'helm template accepted ingress.enabled="yes"');
    assert.match(res.stderr, /\/ingress\/enabled/);
    assert.match(res.stderr, /want boolean/);
  });

  test('the schema rejects a misspelt top-level value', async () => {
    const res = await run(helm, ['template', 'sortie', CHART, '--set', 'replicacount=1']);
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /replicacount/);
  });

  test('the rendered environment carries the session settings', async () => {
    const res = await runOk(helm, ['template', 'sortie', CHART, '-n', NAMESPACE, '--show-only', 'templates/deployment.yaml',
      '--set', 'sessionTimeout=30', '--set', 'podReadyTimeout=45', '--set', 'sessionCleanupInterval=2']);
    const deployment = loadAllYaml(res.stdout)[0] as K8sObject;
    const env = Object.fromEntries((deployment.spec.template.spec.containers[0].env as Array<{ name: string; value?: string }>).map((e) => [e.name, e.value]));
    assert.equal(env.SORTIE_RUNNER, 'kubernetes');
    assert.equal(env.SORTIE_NAMESPACE, NAMESPACE);
    assert.equal(env.SESSION_TIMEOUT, '30');
    assert.equal(env.SESSION_CLEANUP_INTERVAL, '2');
    assert.equal(env.POD_READY_TIMEOUT, '45');
    assert.equal(env.SORTIE_VNC_SIDECAR_IMAGE, 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest');
    assert.equal(env.SORTIE_APPS_FILE, '/etc/sortie/apps.json');
    assert.equal(env.SORTIE_DB_PATH, '/var/lib/sortie/db/sortie.db');
    assert.equal(deployment.spec.strategy.type, 'Recreate');
  });

  test('metrics are off by default; a ServiceMonitor scrapes /metrics with the token Sortie reads from the same Secret', async () => {
    const tokenEnv = (objects: K8sObject[]) =>
      (objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env as Array<{ name: string; valueFrom?: any }>).find((e) => e.name === 'SORTIE_METRICS_TOKEN');
    const off = await renderChart();
    assert.equal(tokenEnv(off), undefined);
    assert.ok(!off.some((o) => o.kind === 'ServiceMonitor' || o.metadata.name === 'sortie-metrics'));

    const on = await renderChart('--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.serviceMonitor.labels.release=kps');
    const secret = on.find((o) => o.kind === 'Secret' && o.metadata.name === 'sortie-metrics')!;
    const token = Buffer.from(String(secret.data?.['metrics-token']), 'base64').toString();
    assert.equal(loadConfig({ SORTIE_METRICS_TOKEN: token }).metrics.token, token, 'Sortie accepts the generated token');
    assert.deepEqual(tokenEnv(on)?.valueFrom, { secretKeyRef: { name: 'sortie-metrics', key: 'metrics-token' } });
    const monitor = on.find((o) => o.kind === 'ServiceMonitor')!;
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(monitor.metadata.labels?.release, 'kps');
    const service = on.find((o) => o.kind === 'Service')!;
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(service.metadata.labels?.[key], value, `the Service carries ${key}`);
    const [endpoint] = monitor.spec.endpoints;
    assert.ok(service.spec.ports.some((p: { name: string }) => p.name === endpoint.port), `the Service has a port named ${endpoint.port}`);
    assert.equal(endpoint.path, '/metrics');
    assert.deepEqual(endpoint.bearerTokenSecret, { name: 'sortie-metrics', key: 'metrics-token' });

    const theirs = await renderChart('--set', 'metrics.enabled=true', '--set', 'metrics.existingSecret=prom-token');
    assert.ok(!theirs.some((o) => o.kind === 'Secret' && o.metadata.name === 'sortie-metrics'), 'no Secret of the chart beside the one named');
    assert.deepEqual(tokenEnv(theirs)?.valueFrom, { secretKeyRef: { name: 'prom-token', key: 'metrics-token' } });
  });

  test('database.existingSecret hands Sortie the PostgreSQL URL from that Secret, and without it there is none', async () => {
    const render = async (...set: string[]) => {
      const res = await runOk(helm, ['template', 'sortie', CHART, '-n', NAMESPACE, '--show-only', 'templates/deployment.yaml', ...set]);
      const deployment = loadAllYaml(res.stdout)[0] as K8sObject;
      return (deployment.spec.template.spec.containers[0].env as Array<{ name: string; valueFrom?: unknown }>).find((e) => e.name === 'SORTIE_DATABASE_URL');
    };
    assert.deepEqual((await render('--set', 'database.existingSecret=sortie-db', '--set', 'database.urlKey=dsn'))?.valueFrom, {
      secretKeyRef: { name: 'sortie-db', key: 'dsn' },
    });
    assert.equal(await render(), undefined);
  });

  test('more than one replica needs PostgreSQL: the schema refuses it on SQLite, naming database.existingSecret', async () => {
    const refused = await run(helm, ['template', 'sortie', CHART, '-n', NAMESPACE, '--set', 'replicaCount=3']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /database\/existingSecret/);
    const single = await runOk(helm, ['install', 'sortie', CHART, '-n', NAMESPACE, '--dry-run=client']);
    assert.match(single.stdout, /kubectl port-forward -n sortie svc\/sortie 8080:80/);
  });

  test('replicas on PostgreSQL: one pod at a time rolls and drains, no SQLite volume; on SQLite one pod is replaced whole', async () => {
    const replicas = await renderChart('--set', 'replicaCount=3', '--set', 'database.existingSecret=sortie-db');
    const deployment = replicas.find((o) => o.kind === 'Deployment')!;
    assert.equal(deployment.spec.replicas, 3);
    assert.deepEqual(deployment.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    // A new replica settles before the next old one hands it streams.
    assert.equal(deployment.spec.minReadySeconds, 10);
    const budget = replicas.find((o) => o.kind === 'PodDisruptionBudget')!;
    assert.equal(budget.spec.maxUnavailable, 1);
    assert.deepEqual(budget.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
    assert.ok(!replicas.some((o) => o.kind === 'PersistentVolumeClaim'), 'no ReadWriteOnce volume for pods on several nodes');
    assert.deepEqual(deployment.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'data').emptyDir, {});
    // The Role grows by nothing: the replicas coordinate through the database.
    const role = replicas.find((o) => o.kind === 'Role')!;
    assert.ok(!JSON.stringify(role.rules).includes('leases'));

    const single = await renderChart();
    assert.equal(single.find((o) => o.kind === 'Deployment')!.spec.strategy.type, 'Recreate');
    assert.ok(!single.some((o) => o.kind === 'PodDisruptionBudget'));
    assert.ok(single.some((o) => o.kind === 'PersistentVolumeClaim'));
  });

  test('recordings on PostgreSQL: recordings.persistence gives them a claim every replica mounts, and Sortie writes there; without it the notes say they go with the pod', async () => {
    const envOf = (objects: K8sObject[]) => objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env as Array<{ name: string; value?: string }>;
    const shared = await renderChart('--set', 'replicaCount=3', '--set', 'database.existingSecret=sortie-db', '--set', 'recordings.persistence.enabled=true', '--set', 'recordings.persistence.size=50Gi');
    const claim = shared.find((o) => o.kind === 'PersistentVolumeClaim')!;
    assert.equal(claim.metadata.name, 'sortie-recordings');
    assert.deepEqual(claim.spec.accessModes, ['ReadWriteMany'], 'replicas on several nodes share it');
    assert.equal(claim.spec.resources.requests.storage, '50Gi');
    assert.equal(claim.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
    const pod = shared.find((o) => o.kind === 'Deployment')!.spec.template.spec;
    assert.equal(pod.volumes.find((v: { name: string }) => v.name === 'recordings').persistentVolumeClaim.claimName, 'sortie-recordings');
    const mount = pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'recordings');
    const dir = envOf(shared).find((e) => e.name === 'SORTIE_RECORDINGS_DIR')!.value!;
    assert.ok(dir.startsWith(`${mount.mountPath}/`), `${dir} is a folder inside the volume at ${mount.mountPath}`);
    assert.equal(loadConfig({ SORTIE_RECORDINGS_DIR: dir }).recordingsDir, dir);

    const theirs = await renderChart('--set', 'database.existingSecret=sortie-db', '--set', 'recordings.persistence.enabled=true', '--set', 'recordings.persistence.existingClaim=nfs-recordings');
    assert.ok(!theirs.some((o) => o.kind === 'PersistentVolumeClaim'));
    assert.equal(theirs.find((o) => o.kind === 'Deployment')!.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'recordings').persistentVolumeClaim.claimName, 'nfs-recordings');

    const off = await renderChart('--set', 'database.existingSecret=sortie-db');
    assert.ok(!off.some((o) => o.kind === 'PersistentVolumeClaim'));
    assert.equal(envOf(off).find((e) => e.name === 'SORTIE_RECORDINGS_DIR'), undefined);
    const notes = await runOk(helm, ['install', 'sortie', CHART, '-n', NAMESPACE, '--dry-run=client', '--set', 'database.existingSecret=sortie-db']);
    assert.match(notes.stdout, /lost with the\s+pod: set recordings\.persistence\.enabled=true/);
    // With SQLite the data volume holds them already: no second claim, whatever the setting.
    const sqlite = await renderChart('--set', 'recordings.persistence.enabled=true');
    assert.deepEqual(sqlite.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => o.metadata.name), ['sortie-data']);
  });

  test('the chart\'s and the raw NetworkPolicies open exactly the session pod\'s ports, to Sortie only', async () => {
    const sessionPorts = [WEBSOCKIFY_PORT, FILES_PORT].sort();
    const ports = (rule: { ports?: Array<{ protocol: string; port: number }> }) => (rule.ports ?? []).map((p) => `${p.protocol}/${p.port}`).sort();
    const chart = loadAllYaml((await runOk(helm, ['template', 'sortie', CHART, '-n', NAMESPACE, '--show-only', 'templates/networkpolicy.yaml'])).stdout) as K8sObject[];
    const raw = loadAllYaml(readFileSync(path.join(MANIFESTS, 'network-policy.yaml'), 'utf8')) as K8sObject[];
    for (const [which, objects] of [['chart', chart], ['deploy/kubernetes', raw]] as const) {
      const sessions = objects.find((o) => o.metadata.name === 'sortie-sessions')!;
      assert.equal(sessions.spec.ingress.length, 1, which);
      assert.deepEqual(ports(sessions.spec.ingress[0]), sessionPorts.map((p) => `TCP/${p}`), which);
      assert.deepEqual(sessions.spec.ingress[0].from.map((f: { podSelector: { matchLabels: Record<string, string> } }) => f.podSelector.matchLabels['app.kubernetes.io/name']), ['sortie'], which);
      assert.deepEqual(sessions.spec.egress, [], which);
      // Sortie's way out to session pods: the same two ports, nothing more.
      const server = objects.find((o) => o.metadata.name === 'sortie-server')!;
      const toSessions = server.spec.egress.filter((r: { to?: unknown[] }) => r.to?.length);
      assert.equal(toSessions.length, 1, which);
      assert.deepEqual(ports(toSessions[0]), sessionPorts.map((p) => `TCP/${p}`), which);
    }
  });
});

describe('chart and raw manifests accepted by the API server (server-side dry run)', () => {
  let cluster: Cluster;
  let helm: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    cluster = new Cluster(requireCluster());
    helm = cluster.tools.helm;
    if (await cluster.ensureNamespace(NAMESPACE)) {
      cleanups.push(() => cluster.kubectl(['delete', 'namespace', NAMESPACE, '--wait=false']));
    }
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  // The cluster's own API versions, as `helm install` would see them (the PodDisruptionBudget's depends on them).
  const render = async (...set: string[]) =>
    (await runOk(helm, ['template', 'sortie', CHART, '--namespace', NAMESPACE, '--kubeconfig', cluster.tools.kubeconfig, '--dry-run=server', ...set.flatMap((s) => ['--set', s])])).stdout;

  test('(a) defaults', async () => {
    const objects = await cluster.dryRun(await render());
    assert.deepEqual(kinds(objects), [
      'ConfigMap/sortie-apps',
      'Deployment/sortie',
      'LimitRange/sortie',
      'NetworkPolicy/sortie-server',
      'NetworkPolicy/sortie-sessions',
      'PersistentVolumeClaim/sortie-data',
      'Pod/sortie-test-connection',
      'ResourceQuota/sortie',
      'Role/sortie',
      'RoleBinding/sortie',
      'Secret/sortie-auth',
      'Service/sortie',
      'ServiceAccount/sortie',
    ]);
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.template.spec.serviceAccountName, 'sortie');
    const container = deployment.spec.template.spec.containers[0];
    assert.equal(container.image, 'ghcr.io/rjsadow/sortie:latest');
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    assert.equal(deployment.spec.template.spec.securityContext.runAsUser, 1000);
    assert.equal(deployment.spec.template.spec.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    const service = objects.find((o) => o.kind === 'Service')!;
    assert.equal(service.spec.ports[0].port, 80);
    assert.equal(service.spec.ports[0].targetPort, 'http');
    // The catalog in the ConfigMap is the demo catalog, valid JSON in the seed's format.
    const apps = JSON.parse(objects.find((o) => o.kind === 'ConfigMap')!.data!['apps.json']!) as { applications: Array<{ id: string }> };
    assert.deepEqual(apps.applications.map((a) => a.id), ['xterm', 'xeyes', 'xclock', 'sortie-docs']);
  });

  test('(b) ingress enabled with a host', async () => {
    const objects = await cluster.dryRun(await render('ingress.enabled=true', 'ingress.host=sortie.mycompany.com'));
    const ingress = objects.find((o) => o.kind === 'Ingress');
    assert.ok(ingress, 'no Ingress rendered');
    assert.equal(ingress.spec.rules[0].host, 'sortie.mycompany.com');
    assert.equal(ingress.spec.rules[0].http.paths[0].backend.service.name, 'sortie');
    const env = objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env as Array<{ name: string; value?: string }>;
    assert.equal(env.find((e) => e.name === 'SORTIE_PUBLIC_URL')?.value, 'http://sortie.mycompany.com');
  });

  test('(c) networkPolicy.enabled=false renders no NetworkPolicy', async () => {
    const objects = await cluster.dryRun(await render('networkPolicy.enabled=false'));
    assert.equal(objects.filter((o) => o.kind === 'NetworkPolicy').length, 0);
    assert.ok(objects.some((o) => o.kind === 'Deployment'));
  });

  test('(d) resourceQuota.enabled=false renders no ResourceQuota or LimitRange', async () => {
    const objects = await cluster.dryRun(await render('resourceQuota.enabled=false'));
    assert.equal(objects.filter((o) => o.kind === 'ResourceQuota' || o.kind === 'LimitRange').length, 0);
  });

  test('(e) replicaCount=3 on PostgreSQL, with its PodDisruptionBudget and shared recordings claim, is accepted', async () => {
    const objects = await cluster.dryRun(await render('replicaCount=3', 'database.existingSecret=sortie-db', 'recordings.persistence.enabled=true'));
    assert.equal(objects.find((o) => o.kind === 'Deployment')!.spec.replicas, 3);
    assert.ok(objects.some((o) => o.kind === 'PodDisruptionBudget'));
    assert.ok(objects.some((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === 'sortie-recordings'), 'the shared recordings claim');
  });

  test('sessions in another namespace: Role, RoleBinding, policy and quota go there', async () => {
    const sessions = `sortie-t-deploy-${randomBytes(3).toString('hex')}`;
    await cluster.ensureNamespace(sessions);
    cleanups.push(() => cluster.kubectl(['delete', 'namespace', sessions, '--wait=false']));
    const objects = await cluster.dryRun(await render(`sessionNamespace=${sessions}`));
    const where = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)?.metadata.namespace;
    assert.equal(where('Role', 'sortie'), sessions);
    assert.equal(where('RoleBinding', 'sortie'), sessions);
    assert.equal(where('NetworkPolicy', 'sortie-sessions'), sessions);
    assert.equal(where('ResourceQuota', 'sortie'), sessions);
    assert.equal(where('Deployment', 'sortie'), NAMESPACE);
    const binding = objects.find((o) => o.kind === 'RoleBinding')!;
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'sortie', namespace: NAMESPACE }]);
  });

  test('the raw manifests in deploy/kubernetes/ are accepted together', async () => {
    const files = readdirSync(MANIFESTS).filter((f) => f.endsWith('.yaml')).sort();
    for (const expected of ['apps-configmap.yaml', 'deployment.yaml', 'network-policy.yaml', 'rbac.yaml', 'resource-quota.yaml']) {
      assert.ok(files.includes(expected), `deploy/kubernetes/${expected} is missing`);
    }
    // The same stream `kubectl apply -f deploy/kubernetes/` sends: every file, in name order.
    const stream = files.map((f) => readFileSync(path.join(MANIFESTS, f), 'utf8')).join('\n---\n');
    const objects = await cluster.dryRun(stream);
    const names = kinds(objects);
    for (const expected of ['ConfigMap/sortie-apps', 'Deployment/sortie', 'Service/sortie', 'ServiceAccount/sortie', 'Role/sortie',
      'RoleBinding/sortie', 'ResourceQuota/sortie', 'NetworkPolicy/sortie-sessions', 'NetworkPolicy/sortie-server']) {
      assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
    }
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const env = Object.fromEntries((deployment.spec.template.spec.containers[0].env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
    assert.equal(env.SORTIE_RUNNER, 'kubernetes');
    assert.equal(env.SORTIE_NAMESPACE, 'sortie');
    assert.equal(env.SESSION_TIMEOUT, '120');
    assert.equal(env.SESSION_CLEANUP_INTERVAL, '5');
    assert.equal(env.POD_READY_TIMEOUT, '120');
    assert.equal(env.SORTIE_VNC_SIDECAR_IMAGE, 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest');
    assert.equal(deployment.spec.strategy.type, 'Recreate');
    // The raw catalog is the repository's demo catalog.
    const configMap = objects.find((o) => o.kind === 'ConfigMap')!;
    assert.deepEqual(JSON.parse(configMap.data!['apps.json']!), JSON.parse(readFileSync(path.join(REPO_ROOT, 'examples', 'apps.json'), 'utf8')));
  });

  test('the chart’s Role grants exactly what deploy/kubernetes/rbac.yaml grants', async () => {
    const chart = await cluster.dryRun(await render());
    const raw = loadAllYaml(readFileSync(path.join(MANIFESTS, 'rbac.yaml'), 'utf8')) as K8sObject[];
    const rules = (objects: K8sObject[]) =>
      objects.find((o) => o.kind === 'Role')!.rules!.map((r: { apiGroups: string[]; resources: string[]; verbs: string[] }) => ({
        apiGroups: [...r.apiGroups].sort(),
        resources: [...r.resources].sort(),
        verbs: [...r.verbs].sort(),
      }));
    assert.deepEqual(rules(chart), rules(raw));
  });
});

describe('kind setup script', () => {
  for (const script of ['scripts/kind-setup.sh']) {
    test(`${script} passes bash -n and shellcheck`, async () => {
      await runOk('bash', ['-n', script]);
      const which = await run('bash', ['-c', 'command -v shellcheck']);
      assert.equal(which.status, 0, 'shellcheck is not installed (apt-get install shellcheck)');
      // -x: follow the libraries a script sources (scripts/local-cluster/*.sh).
      const res = await run('shellcheck', ['-x', script]);
      assert.equal(res.status, 0, `shellcheck ${script}:\n${res.stdout}${res.stderr}`);
    });
  }

  test('kind-setup.sh runs the seed’s commands', () => {
    const text = readFileSync(path.join(REPO_ROOT, 'scripts', 'kind-setup.sh'), 'utf8');
    assert.match(text, /kind create cluster --name "\$CLUSTER" --config deploy\/kind\/kind-config\.yaml/);
    assert.match(text, /docker build -t "\$SORTIE_IMAGE" \./);
    assert.match(text, /docker build -t "\$SIDECAR_IMAGE" docker\/vnc-sidecar\//);
    assert.match(text, /kind load docker-image "\$SORTIE_IMAGE" --name "\$CLUSTER"/);
    assert.match(text, /kind load docker-image "\$SIDECAR_IMAGE" --name "\$CLUSTER"/);
    assert.match(text, /helm install sortie charts\/sortie --namespace "\$NAMESPACE" --create-namespace --set image\.pullPolicy=Never/);
    assert.match(text, /kind delete cluster --name "\$CLUSTER"/);
    const config = loadAllYaml(readFileSync(path.join(REPO_ROOT, 'deploy', 'kind', 'kind-config.yaml'), 'utf8'))[0] as Record<string, any>;
    assert.equal(config.kind, 'Cluster');
    assert.equal(config.apiVersion, 'kind.x-k8s.io/v1alpha4');
  });
});

describe('Dockerfile', () => {
  // No Docker engine here: `scripts/local-cluster.sh build-image sortie` builds it with
  // buildah and the in-cluster test runs the result. This pins the Dockerfile's contract.
  test('multi-stage build, non-root runtime, the server as its command', () => {
    const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((l) => !l.trimStart().startsWith('#'));
    const froms = lines.filter((l) => l.startsWith('FROM '));
    assert.deepEqual(froms, ['FROM node:20-bookworm-slim AS build', 'FROM node:20-bookworm-slim']);
    for (const step of [/npm ci\b/, /npm run build/, /npm prune --omit=dev/, /python3 make g\+\+/]) {
      assert.match(text, step);
    }
    assert.ok(lines.includes('USER 1000'));
    assert.ok(lines.includes('EXPOSE 8080'));
    assert.ok(lines.includes('CMD ["node", "dist/server/main.js"]'));
    // What the runtime stage copies must exist after `npm run build`.
    for (const copied of text.matchAll(/^COPY --from=build \/src\/(\S+)/gm)) {
      assert.ok(existsSync(path.join(REPO_ROOT, copied[1]!)), `the Dockerfile copies ${copied[1]}, which a build does not produce`);
    }
    const ignored = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    assert.ok(ignored.includes('node_modules') && ignored.includes('dist'), '.dockerignore must keep host node_modules and dist out of the context');
  });
});
