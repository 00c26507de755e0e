import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, test } from 'node:test';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { appSchema } from '../../catalog/app.js';
import { ConfigError } from '../../errors.js';
import { workloadName, type WorkloadEvent } from '../runner.js';
import { KubernetesRunner } from './kubernetes-runner.js';
import { buildSessionPod } from './pod-spec.js';

// The runner against a small API server of our own over real HTTP: what start() asks the
// API server, and what it makes of the answers, without a cluster. The cluster tests
// (server/test/kubernetes/) prove the same runner against a real API server.

const NAMESPACE = 'sortie-test';
const PODS_PATH = `/api/v1/namespaces/${NAMESPACE}/pods`;

function sessionPod(sessionId: string, state: 'pending' | 'ready' | 'failed', resourceVersion = '1'): V1Pod {
  const app = appSchema.parse({ id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: 'sortie-demo-apps:latest' });
  const pod = buildSessionPod(
    { sessionId, workloadName: workloadName(sessionId), userId: 'u', app, streamSecret: 'pw' },
    { namespace: NAMESPACE, sidecarImage: 'sidecar:latest', imagePullPolicy: 'IfNotPresent' },
  );
  pod.metadata!.resourceVersion = resourceVersion;
  pod.status =
    state === 'ready'
      ? { phase: 'Running', podIP: '10.0.0.7', conditions: [{ type: 'Ready', status: 'True' }] }
      : state === 'failed'
        ? { phase: 'Running', containerStatuses: [{ name: 'app', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 7 } } }] }
        : { phase: 'Pending' };
  return pod;
}

/** Answers the pod list and holds pod watches open; counts both, and can refuse either. */
class FakeApiServer {
  lists = 0;
  watches = 0;
  pods: V1Pod[] = [];
  refuse: { list?: number; watch?: number } = {};
  private readonly open = new Set<http.ServerResponse>();
  private readonly server = http.createServer((req, res) => this.answer(req, res));

  async listen(): Promise<KubeConfig> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      // Plain HTTP is for tests only; client-node asks for skipTLSVerify to allow it.
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'fake' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** One event on every open watch, as the API server writes it. */
  send(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: V1Pod): void {
    for (const res of this.open) res.write(`${JSON.stringify({ type, object: pod })}\n`);
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method !== 'GET' || url.pathname !== PODS_PATH) {
      res.writeHead(404).end();
      return;
    }
    const watching = url.searchParams.get('watch') === 'true';
    if (watching) this.watches++;
    else this.lists++;
    const refused = watching ? this.refuse.watch : this.refuse.list;
    if (refused) {
      res.writeHead(refused, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'pods is forbidden', code: refused }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (!watching) {
      res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '100' }, items: this.pods }));
      return;
    }
    res.flushHeaders();
    this.open.add(res);
    res.on('close', () => this.open.delete(res));
  }
}

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let api: FakeApiServer;
let runner: KubernetesRunner | undefined;

async function newRunner(pods: V1Pod[] = [], refuse: FakeApiServer['refuse'] = {}): Promise<KubernetesRunner> {
  api = new FakeApiServer();
  api.pods = pods;
  api.refuse = refuse;
  const kubeConfig = await api.listen();
  runner = new KubernetesRunner({ kubeConfig, namespace: NAMESPACE, sidecarImage: 'sidecar:latest', imagePullPolicy: 'IfNotPresent', logger });
  return runner;
}

async function waitFor<T>(what: string, read: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

afterEach(async () => {
  await runner?.close();
  runner = undefined;
  await api?.close();
});

test('start() lists the pods once, answers from that list, and the watch reports only what changes after', async () => {
  const started = await newRunner([sessionPod('ready-1', 'ready'), sessionPod('pending-1', 'pending'), sessionPod('broken-1', 'failed')]);
  const events: WorkloadEvent[] = [];
  const workloads = await started.start((event) => events.push(event));

  assert.equal(api.lists, 1, 'one list serves reconciliation and the watch');
  assert.deepEqual(
    [...workloads].sort((a, b) => a.sessionId.localeCompare(b.sessionId)),
    [
      { sessionId: 'broken-1', state: 'ended', reason: 'The app container exited with code 7' },
      { sessionId: 'pending-1', state: 'starting' },
      { sessionId: 'ready-1', state: 'ready', endpoint: { host: '10.0.0.7', port: 6080 } },
    ],
  );
  await waitFor('the watch', () => (api.watches === 1 ? true : undefined));

  // The adopted pods' own state is not news; their changes are.
  api.send('MODIFIED', sessionPod('ready-1', 'ready', '2'));
  api.send('MODIFIED', sessionPod('pending-1', 'ready', '2'));
  const ready = await waitFor('the ready event', () => events.find((e) => e.sessionId === 'pending-1'));
  assert.deepEqual(ready, { type: 'ready', sessionId: 'pending-1', endpoint: { host: '10.0.0.7', port: 6080 } });
  api.send('DELETED', sessionPod('broken-1', 'failed', '3'));
  api.send('ADDED', sessionPod('new-1', 'ready', '4'));
  await waitFor('the new pod', () => events.find((e) => e.sessionId === 'new-1'));
  assert.deepEqual(events.map((e) => `${e.type} ${e.sessionId}`), ['ready pending-1', 'ready new-1'], 'nothing repeats what start() returned');
  assert.equal(api.lists, 1);
});

test('a runner that may not list pods fails to start with a setup message naming the list', async () => {
  const refused = await newRunner([], { list: 403 });
  await assert.rejects(refused.start(() => undefined), (err: Error) => {
    assert.ok(err instanceof ConfigError, err.message);
    assert.match(err.message, new RegExp(`^Sortie may not list pods in namespace "${NAMESPACE}" \\(HTTP 403; apply deploy/kubernetes/rbac.yaml\\)`));
    return true;
  });
  assert.equal(api.watches, 0);
});

test('a runner that may list but not watch pods fails to start with a setup message naming the watch', async () => {
  const refused = await newRunner([sessionPod('ready-1', 'ready')], { watch: 403 });
  await assert.rejects(refused.start(() => undefined), (err: Error) => {
    assert.ok(err instanceof ConfigError, err.message);
    assert.match(err.message, new RegExp(`^Sortie may not watch pods in namespace "${NAMESPACE}" \\(HTTP 403;`));
    return true;
  });
  assert.equal(api.lists, 1);
});

test('a new pod reports each launch step once, in order, before it is ready', async () => {
  const started = await newRunner();
  const events: WorkloadEvent[] = [];
  await started.start((event) => events.push(event));
  await waitFor('the watch', () => (api.watches === 1 ? true : undefined));

  const at = (rv: string, status: V1Pod['status']) => Object.assign(sessionPod('s1', 'pending', rv), { status });
  const creating = { waiting: { reason: 'ContainerCreating' } };
  const containers = (state: object) => ['app', 'vnc-sidecar'].map((name) => ({ name, image: 'x', imageID: '', ready: false, restartCount: 0, state }));
  api.send('ADDED', at('1', { phase: 'Pending' }));
  api.send('MODIFIED', at('2', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] }));
  api.send('MODIFIED', at('3', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }], containerStatuses: containers(creating) }));
  api.send('MODIFIED', at('4', { phase: 'Running', conditions: [{ type: 'PodScheduled', status: 'True' }], containerStatuses: containers({ running: {} }) }));
  api.send('MODIFIED', sessionPod('s1', 'ready', '5'));
  await waitFor('the ready event', () => events.find((e) => e.type === 'ready'));

  assert.deepEqual(events.map((e) => (e.type === 'progress' ? e.step : e.type)), ['scheduling', 'pulling', 'starting', 'ready']);
  const times = events.flatMap((e) => (e.type === 'progress' ? [Date.parse(e.at)] : []));
  assert.ok(times.every((t, i) => !Number.isNaN(t) && (i === 0 || t >= times[i - 1]!)), 'each step has a time, none before the one it follows');
});
