import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import type { Browser } from 'playwright-core';
import { appSchema, type App } from '../../src/catalog/app.js';
import { DEFAULT_SIDECAR_IMAGE } from '../../src/config/config.js';
import { apiStatusCode } from '../../src/runners/kubernetes/api-errors.js';
import { KubernetesRunner, type KubernetesRunnerOptions } from '../../src/runners/kubernetes/kubernetes-runner.js';
import { workloadName, type LaunchSpec, type WorkloadEvent } from '../../src/runners/runner.js';
import { launchBrowser } from '../support/browser.js';
import { startTestSortie, type TestSortie } from '../support/harness.js';
import { REPO_ROOT } from '../support/paths.js';
import { waitFor as waitUntil } from '../support/wait.js';

export const DEMO_IMAGE = 'sortie-demo-apps:latest';
export const SIDECAR_IMAGE = DEFAULT_SIDECAR_IMAGE;
/** Small, so the 2-core test node can run several sessions side by side. */
export const SMALL_LIMITS = { cpu_request: '50m', cpu_limit: '1', memory_request: '64Mi', memory_limit: '512Mi' };

const NO_CLUSTER = 'These tests need the local Kubernetes cluster: run `scripts/local-cluster.sh up` (or point KUBECONFIG at a cluster that has the sortie images)';

/**
 * The admin kubeconfig: KUBECONFIG when set (scripts/test.sh exports the local cluster's),
 * else the path `scripts/local-cluster.sh kubeconfig` prints (it fails, saying why, unless
 * the node is Ready). Never skips: a missing cluster is a failure that says how to get one.
 */
export function adminKubeconfigPath(): string {
  if (process.env.KUBECONFIG) return process.env.KUBECONFIG;
  try {
    return execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'local-cluster.sh'), 'kubeconfig'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    throw new Error(`${NO_CLUSTER}\n${String((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`);
  }
}

/** Settings for a Sortie on the Kubernetes runner in `namespace` of the local cluster, with the sidecar image the cluster holds. */
export function kubernetesSortieEnv(namespace: string): Record<string, string> {
  return { SORTIE_RUNNER: 'kubernetes', SORTIE_NAMESPACE: namespace, KUBECONFIG: adminKubeconfigPath(), SORTIE_VNC_SIDECAR_IMAGE: SIDECAR_IMAGE };
}

/** An admin KubeConfig for a cluster that answers, or a failure telling how to start one. */
export async function adminKubeConfig(): Promise<KubeConfig> {
  const file = adminKubeconfigPath();
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new Error(`${NO_CLUSTER}\n(could not read ${file}: ${(err as Error).message})`);
  }
  const core = kc.makeApiClient(CoreV1Api);
  let nodes;
  try {
    nodes = await core.listNode();
  } catch (err) {
    throw new Error(`${NO_CLUSTER}\n(${kc.getCurrentCluster()?.server} did not answer: ${(err as Error).message.split('\n')[0]})`);
  }
  const ready = nodes.items.some((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  if (!ready) throw new Error(`${NO_CLUSTER}\n(no node is Ready yet)`);
  return kc;
}

/**
 * A namespace of the test file's own, deleted afterwards. Waits for its `default`
 * ServiceAccount: until the controller makes it, the ServiceAccount admission plugin
 * refuses every pod.
 */
export async function createTestNamespace(kc: KubeConfig, prefix: string): Promise<{ name: string; remove: () => Promise<void> }> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = `sortie-t-${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'sortie.io/test': prefix } } } });
  await waitUntil(async () => {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
      return true;
    } catch {
      return false;
    }
  }, { what: `the default ServiceAccount in ${name}`, timeoutMs: 30_000, intervalMs: 100 });
  return {
    name,
    remove: async () => {
      await core.deleteNamespace({ name, gracePeriodSeconds: 0 }).catch(() => undefined);
    },
  };
}

export interface ClusterDeskOptions {
  /** Names the test namespace (`sortie-t-<name>-…`) and Sortie's scratch folder (`k8s-<name>`). */
  name: string;
  /** The catalog; default: the demo apps. */
  apps?: unknown[];
  /** Settings on top of the kubernetes runner's (SORTIE_AUTH, SORTIE_MAX_SESSIONS_PER_USER, …). */
  env?: Record<string, string>;
  /** Also start Debian's Chromium, for tests of what a person sees. */
  browser?: boolean;
}

export interface ClusterDesk {
  kc: KubeConfig;
  namespace: { name: string; remove: () => Promise<void> };
  sortie: TestSortie;
  browser: Browser | undefined;
  /** Closes the browser, ends what is left of the sessions, stops Sortie and deletes the namespace. */
  cleanup: () => Promise<void>;
}

export type ClusterBrowserDesk = ClusterDesk & { browser: Browser };

/**
 * A real Sortie on the kubernetes runner, its session pods in a namespace of the test
 * file's own on the local cluster, and a browser when asked for. A start that fails part
 * way removes what it had made, so `after` needs only `cleanup` of what came back.
 */
export async function startClusterDesk(options: ClusterDeskOptions & { browser: true }): Promise<ClusterBrowserDesk>;
export async function startClusterDesk(options: ClusterDeskOptions): Promise<ClusterDesk>;
export async function startClusterDesk(options: ClusterDeskOptions): Promise<ClusterDesk> {
  const kc = await adminKubeConfig();
  const namespace = await createTestNamespace(kc, options.name);
  let sortie: TestSortie | undefined;
  let browser: { browser: Browser; close: () => Promise<void> } | undefined;
  const cleanup = async () => {
    await browser?.close();
    await sortie?.cleanup();
    await namespace.remove();
  };
  try {
    sortie = await startTestSortie({
      name: `k8s-${options.name}`,
      ...(options.apps ? { apps: options.apps } : {}),
      env: { ...kubernetesSortieEnv(namespace.name), ...options.env },
    });
    if (options.browser) browser = await launchBrowser();
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { kc, namespace, sortie, browser: browser?.browser, cleanup };
}

export function testApp(fields: Partial<Record<keyof App, unknown>> = {}): App {
  return appSchema.parse({
    id: 'xterm',
    name: 'XTerm',
    launch_type: 'container',
    container_image: DEMO_IMAGE,
    command: ['xterm'],
    resource_limits: SMALL_LIMITS,
    ...fields,
  });
}

export function launchSpec(app: App = testApp(), userId = 'test-user'): LaunchSpec {
  const sessionId = randomBytes(6).toString('hex');
  // VNC passwords count 8 characters; hex keeps it clear of x11vnc's password-file syntax.
  return { sessionId, workloadName: workloadName(sessionId), userId, app, streamSecret: randomBytes(4).toString('hex') };
}

export interface RecordedEvent {
  event: WorkloadEvent;
  /** Date.now() when the runner emitted it. */
  at: number;
}

/** Collects runner events and lets a test wait for the one it expects. */
export class EventLog {
  /** What workloads became; launch steps are kept apart in `steps`. */
  readonly all: RecordedEvent[] = [];
  readonly steps: RecordedEvent[] = [];
  private waiters: Array<() => void> = [];

  readonly listener = (event: WorkloadEvent): void => {
    if (event.type === 'progress') {
      this.steps.push({ event, at: Date.now() });
      return;
    }
    this.all.push({ event, at: Date.now() });
    for (const wake of this.waiters.splice(0)) wake();
  };

  for(sessionId: string): RecordedEvent[] {
    return this.all.filter((r) => r.event.sessionId === sessionId);
  }

  /**
   * The session's first `failed`/`exited` event. An app that dies within a second of starting
   * can still be reported `ready` first: the kubelet may publish "running and probed" before
   * it notices the exit, so tests of failures wait for the ending, not the first event.
   */
  end(sessionId: string, timeoutMs = 60_000): Promise<RecordedEvent> {
    return this.next(sessionId, timeoutMs, (r) => r.event.type !== 'ready');
  }

  async next(sessionId: string, timeoutMs = 60_000, match: (r: RecordedEvent) => boolean = () => true): Promise<RecordedEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.for(sessionId).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event for session ${sessionId} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
        if (process.env.SORTIE_TEST_LOG_LEVEL) process.stderr.write(line);
      },
    },
  );
  return { logger, lines };
}

export function makeRunner(kc: KubeConfig, namespace: string, logger: Logger = pino({ level: 'silent' }), extra: Pick<KubernetesRunnerOptions, 'watchBackoff' | 'metrics'> = {}): KubernetesRunner {
  return new KubernetesRunner({ kubeConfig: kc, namespace, sidecarImage: SIDECAR_IMAGE, imagePullPolicy: 'IfNotPresent', logger, ...extra });
}

export async function readPod(kc: KubeConfig, namespace: string, name: string): Promise<V1Pod | undefined> {
  try {
    return await kc.makeApiClient(CoreV1Api).readNamespacedPod({ name, namespace });
  } catch (err) {
    if (apiStatusCode(err) === 404) return undefined;
    throw err;
  }
}

// Generous: on the two-core test node the kubelet has taken from 5 s to over 60 s to remove a
// stopped pod (its sandbox and network teardown), depending on what else runs.
export async function waitForPodGone(kc: KubeConfig, namespace: string, name: string, timeoutMs = 120_000): Promise<number> {
  const started = Date.now();
  await waitUntil(async () => (await readPod(kc, namespace, name)) === undefined, { what: `pod ${name} to be gone`, timeoutMs, intervalMs: 100 });
  return Date.now() - started;
}
