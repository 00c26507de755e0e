import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CoreV1Api, KubeConfig, VersionApi, Watch, type V1Pod } from '@kubernetes/client-node';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');

/** KUBECONFIG when set, else the local cluster's (as `scripts/local-cluster.sh kubeconfig` prints it). */
export function kubeconfigPath(): string {
  if (process.env.KUBECONFIG) return process.env.KUBECONFIG;
  try {
    return execFileSync('bash', [path.join(repoRoot, 'scripts', 'local-cluster.sh'), 'kubeconfig'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const why = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`no cluster: set KUBECONFIG or run \`bash scripts/local-cluster.sh up\`${why ? `\n${why}` : ''}`);
  }
}

export function loadKubeConfig(file: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/** "v1.20.15, 1 node(s) Ready" */
export async function describeCluster(kc: KubeConfig): Promise<string> {
  const version = await kc.makeApiClient(VersionApi).getCode();
  const nodes = await kc.makeApiClient(CoreV1Api).listNode();
  const ready = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  return `Kubernetes ${version.gitVersion}, ${nodes.items.length} node(s), ${ready} Ready`;
}

/** A namespace of the benchmark's own, with its default ServiceAccount (pods are refused until it exists). */
export async function createBenchNamespace(kc: KubeConfig, prefix: string): Promise<{ name: string; remove: () => Promise<void> }> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'sortie.io/bench': prefix } } } });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`namespace ${name} got no default ServiceAccount within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let removed: Promise<void> | undefined;
  return {
    name,
    remove: () => (removed ??= core.deleteNamespace({ name, gracePeriodSeconds: 0 }).then(() => undefined, () => undefined)),
  };
}

export interface PodTimes {
  /** Date.now() when this process saw each transition arrive on its watch. */
  addedAt?: number;
  readyAt?: number;
  deletedAt?: number;
}

const isReady = (pod: V1Pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/**
 * A raw watch on every pod of a namespace, independent of Sortie: when each pod appeared
 * (ADDED), turned Ready and vanished (DELETED), as the API server reports them to a client.
 * Restarts itself if the API server ends the watch; samples spanning a restart are
 * suspect (a replayed ADDED is not a creation), which `restartedBetween` tells.
 */
export class PodWatch {
  readonly pods = new Map<string, PodTimes>();
  /** Pods that exist now (including those being deleted). */
  readonly alive = new Set<string>();
  readonly restarts: number[] = [];
  /** Each pod's latest object exactly as the watch delivered it (parsed JSON). */
  readonly latest = new Map<string, unknown>();
  private abort: AbortController | undefined;
  private stopped = false;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
  ) {}

  async start(): Promise<void> {
    this.alive.clear();
    this.abort = await new Watch(this.kc).watch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      {},
      (type, pod: V1Pod) => this.onEvent(type, pod),
      () => {
        if (this.stopped) return;
        this.restarts.push(Date.now());
        setTimeout(() => void this.start().catch(() => this.restarts.push(Date.now())), 200);
      },
    );
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  times(name: string): PodTimes {
    return this.pods.get(name) ?? {};
  }

  restartedBetween(from: number, to: number): boolean {
    return this.restarts.some((t) => t >= from && t <= to);
  }

  /** Resolves once `check` holds, re-checking on every watch event (and every 250 ms). */
  async until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private onEvent(type: string, pod: V1Pod): void {
    const at = Date.now();
    const name = pod.metadata?.name;
    if (!name) return;
    let rec = this.pods.get(name);
    if (!rec) this.pods.set(name, (rec = {}));
    this.latest.set(name, pod);
    if (type === 'DELETED') {
      rec.deletedAt ??= at;
      this.alive.delete(name);
    } else {
      if (type === 'ADDED') rec.addedAt ??= at;
      this.alive.add(name);
      if (isReady(pod)) rec.readyAt ??= at;
    }
    for (const wake of this.waiters.splice(0)) wake();
  }
}
