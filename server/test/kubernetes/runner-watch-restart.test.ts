import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Metrics } from '../../src/metrics/metrics.js';
import { buildSessionPod } from '../../src/runners/kubernetes/pod-spec.js';
import type { KubernetesRunner } from '../../src/runners/kubernetes/kubernetes-runner.js';
import { adminKubeConfig, captureLogger, createTestNamespace, EventLog, launchSpec, makeRunner, SIDECAR_IMAGE } from './cluster.js';
import { sleep, waitFor } from '../support/wait.js';

/**
 * A TCP hop between the runner and the API server that a test can cut: established
 * connections (the watch among them) are destroyed, and while `down` new ones are refused.
 * TLS passes through untouched, so the runner sees exactly what a network drop looks like.
 */
class Cuttable {
  private readonly sockets = new Set<net.Socket>();
  private down = false;
  readonly server: net.Server;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      if (this.down) return client.destroy();
      const upstream = net.connect(target.port, target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  cut(options: { stayDown: boolean }): void {
    this.down = options.stayDown;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.down = false;
  }

  close(): Promise<void> {
    this.cut({ stayDown: true });
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let admin: KubeConfig;
let namespace: { name: string; remove: () => Promise<void> };
let proxy: Cuttable;
let runner: KubernetesRunner;
const events = new EventLog();
const logs = captureLogger();
const metrics = new Metrics({ runner: 'kubernetes', sessionCounts: async () => [] });

/** sortie_runner_errors_total{operation="watch"} as a scrape shows it. */
async function watchErrors(): Promise<number> {
  const line = (await metrics.render()).body.split('\n').find((l) => l.startsWith('sortie_runner_errors_total{runner="kubernetes",operation="watch"}'));
  return Number(line?.split(' ').at(-1) ?? 0);
}

before(async () => {
  admin = await adminKubeConfig();
  namespace = await createTestNamespace(admin, 'watch');
  const cluster = admin.getCurrentCluster()!;
  const server = new URL(cluster.server);
  proxy = new Cuttable({ host: server.hostname, port: Number(server.port || 443) });
  const port = await proxy.listen();
  // Same host name (the serving certificate has it), another port: the proxy's.
  const viaProxy = new KubeConfig();
  viaProxy.loadFromOptions({
    clusters: [{ ...cluster, name: 'via-proxy', server: `https://${server.hostname}:${port}` }],
    users: [admin.getCurrentUser()!],
    contexts: [{ name: 'via-proxy', cluster: 'via-proxy', user: admin.getCurrentUser()!.name }],
    currentContext: 'via-proxy',
  });
  runner = makeRunner(viaProxy, namespace.name, logs.logger, { watchBackoff: { initialMs: 100, maxMs: 800 }, metrics });
  await runner.start(events.listener);
});

after(async () => {
  await runner?.close();
  await proxy?.close();
  await namespace?.remove();
});

/** Creates a session pod behind the runner's back, as another Sortie replica would. */
async function createDirectly(spec: ReturnType<typeof launchSpec>): Promise<void> {
  const pod = buildSessionPod(spec, { namespace: namespace.name, sidecarImage: SIDECAR_IMAGE, imagePullPolicy: 'IfNotPresent' });
  await admin.makeApiClient(CoreV1Api).createNamespacedPod({ namespace: namespace.name, body: pod });
}

test('a watch connection that drops is re-established and misses nothing', async () => {
  const spec = launchSpec();
  proxy.cut({ stayDown: false });
  await sleep(200);
  await createDirectly(spec);
  const ready = await events.next(spec.sessionId);
  assert.equal(ready.event.type, 'ready');
  await runner.stop(spec.sessionId);
});

test('an API server that is unreachable for a while: the watch retries with backoff, then catches up', async (t) => {
  const spec = launchSpec();
  const before = logs.lines.length;
  const errorsBefore = await watchErrors();
  proxy.cut({ stayDown: true });
  // While the runner cannot see the API server, a session pod is created and becomes ready.
  await createDirectly(spec);
  await waitFor(async () => {
    const pod = await admin.makeApiClient(CoreV1Api).readNamespacedPod({ name: spec.workloadName, namespace: namespace.name });
    return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  }, { what: 'the pod to be ready (seen directly)', timeoutMs: 60_000, intervalMs: 100 });
  assert.deepEqual(events.for(spec.sessionId), [], 'nothing can arrive while the API server is cut off');
  const failures = logs.lines.slice(before).filter((l) => l['msg'] === 'pod watch failed; restarting');
  assert.ok(failures.length >= 2, `retried ${failures.length} times while down`);
  const delays = failures.map((l) => l['delayMs'] as number);
  assert.deepEqual(delays, [...delays].sort((a, b) => a - b), `backoff grows: ${delays.join(', ')}`);
  assert.ok(delays.every((d) => d <= 800), 'and is capped');
  // Every failed attempt is counted, the ones during a pending restart too.
  assert.ok((await watchErrors()) - errorsBefore >= failures.length, `watch errors counted: ${(await watchErrors()) - errorsBefore}, retries logged: ${failures.length}`);

  const restoredAt = Date.now();
  proxy.restore();
  const ready = await events.next(spec.sessionId, 10_000);
  assert.equal(ready.event.type, 'ready');
  t.diagnostic(`retries while down: ${failures.length} (delays ${delays.join(', ')} ms); ready event ${ready.at - restoredAt} ms after the API server came back`);
  await waitFor(() => logs.lines.slice(before).some((l) => l['msg'] === 'pod watch restarted'), { what: 'the restart to be logged', timeoutMs: 5_000, intervalMs: 100 });

  // The watch is live again: a deletion by someone else is noticed.
  await admin.makeApiClient(CoreV1Api).deleteNamespacedPod({ name: spec.workloadName, namespace: namespace.name });
  await waitFor(() => events.for(spec.sessionId).length === 2, { what: 'the deletion to be reported', timeoutMs: 10_000, intervalMs: 100 });
  assert.deepEqual(events.for(spec.sessionId)[1]?.event, { type: 'failed', sessionId: spec.sessionId, reason: "The session's pod was deleted outside Sortie" });
});
