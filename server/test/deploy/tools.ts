import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../support/paths.js';
import { waitFor } from '../support/wait.js';

export const CHART = path.join(REPO_ROOT, 'charts', 'sortie');
export const MANIFESTS = path.join(REPO_ROOT, 'deploy', 'kubernetes');
const LOCAL_CLUSTER = path.join(REPO_ROOT, 'scripts', 'local-cluster.sh');

const NO_CLUSTER =
  'These tests need the local Kubernetes cluster: run `scripts/local-cluster.sh up` (it prints the kubeconfig; ' +
  '`scripts/local-cluster.sh status` shows the health of each part)';

export interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  cwd?: string;
}

/** Runs a command to completion without a shell; never throws for a non-zero exit. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = options.timeoutMs
      ? setTimeout(() => {
          child.kill('SIGTERM');
          stderr += `\n[killed after ${options.timeoutMs} ms]`;
        }, options.timeoutMs)
      : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    // A command that exits without reading its input must not fail the caller (EPIPE).
    child.stdin.on('error', () => undefined);
    if (options.input === undefined) child.stdin.end();
    else child.stdin.end(options.input);
  });
}

/** Like run, but a non-zero exit is an error that shows the command and its output. */
export async function runOk(command: string, args: string[], options: RunOptions = {}): Promise<Result> {
  const result = await run(command, args, options);
  if (result.status !== 0) {
    throw new Error(`${path.basename(command)} ${args.join(' ')} exited ${result.status}\n${result.stderr}\n${result.stdout}`.trim());
  }
  return result;
}

export interface Tools {
  kubectl: string;
  helm: string;
  kubeconfig: string;
  /** The node reports Ready. */
  ready: boolean;
  status: string;
}

/**
 * Paths of kubectl, helm and the admin kubeconfig as `scripts/local-cluster.sh env` exports
 * them (SORTIE_KUBECTL / SORTIE_HELM / KUBECONFIG already set take precedence). `ready` and
 * `status` are `local-cluster.sh kubeconfig`'s answer: the node is Ready, or why not.
 */
export function localTools(): Tools {
  const env = spawnSync('bash', [LOCAL_CLUSTER, 'env'], { encoding: 'utf8', cwd: REPO_ROOT });
  const exported = (name: string) => new RegExp(`^export ${name}='([^']*)'$`, 'm').exec(env.stdout ?? '')?.[1];
  const kubectl = process.env.SORTIE_KUBECTL ?? exported('SORTIE_KUBECTL') ?? '';
  const helm = process.env.SORTIE_HELM ?? exported('SORTIE_HELM') ?? '';
  const kubeconfig = process.env.KUBECONFIG ?? exported('KUBECONFIG') ?? '';
  const up = spawnSync('bash', [LOCAL_CLUSTER, 'kubeconfig'], { encoding: 'utf8', cwd: REPO_ROOT });
  const status = `${up.stdout ?? ''}${up.stderr ?? ''}${env.stderr ?? ''}`.trim();
  return { kubectl, helm, kubeconfig, ready: up.status === 0, status };
}

/** helm alone (lint, template, schema): no cluster needed, but the binary must exist. */
export function requireHelm(): string {
  const { helm, status } = localTools();
  if (!helm || !existsSync(helm)) {
    throw new Error(`helm not found (${helm || 'no path'}). scripts/local-cluster.sh up unpacks it.\n${status}`);
  }
  return helm;
}

/** A Ready local cluster, or a failure that says how to get one. Never a skip. */
export function requireCluster(): Tools {
  const tools = localTools();
  if (!tools.ready) throw new Error(`${NO_CLUSTER}\n${tools.status}`);
  for (const bin of [tools.kubectl, tools.helm, tools.kubeconfig]) {
    if (!existsSync(bin)) throw new Error(`${NO_CLUSTER}\n(missing ${bin})\n${tools.status}`);
  }
  return tools;
}

export class Cluster {
  constructor(readonly tools: Tools) {}

  kubectl(args: string[], options: RunOptions = {}): Promise<Result> {
    return run(this.tools.kubectl, ['--kubeconfig', this.tools.kubeconfig, ...args], options);
  }

  kubectlOk(args: string[], options: RunOptions = {}): Promise<Result> {
    return runOk(this.tools.kubectl, ['--kubeconfig', this.tools.kubeconfig, ...args], options);
  }

  helm(args: string[], options: RunOptions = {}): Promise<Result> {
    return run(this.tools.helm, ['--kubeconfig', this.tools.kubeconfig, ...args], options);
  }

  helmOk(args: string[], options: RunOptions = {}): Promise<Result> {
    return runOk(this.tools.helm, ['--kubeconfig', this.tools.kubeconfig, ...args], options);
  }

  async json<T = any>(args: string[]): Promise<T> {
    return JSON.parse((await this.kubectlOk([...args, '-o', 'json'])).stdout) as T;
  }

  async exists(kind: string, name: string, namespace?: string): Promise<boolean> {
    const res = await this.kubectl(['get', kind, name, ...(namespace ? ['-n', namespace] : []), '-o', 'name']);
    if (res.status === 0) return true;
    if (/NotFound|not found/.test(res.stderr)) return false;
    throw new Error(`kubectl get ${kind} ${name}: ${res.stderr}`);
  }

  /**
   * Makes sure a namespace exists (waiting out a previous run's deletion and for the
   * `default` ServiceAccount, without which pods are refused). Returns whether it created it.
   */
  async ensureNamespace(name: string): Promise<boolean> {
    await waitFor(async () => {
      const res = await this.kubectl(['get', 'namespace', name, '-o', 'jsonpath={.status.phase}']);
      return res.status !== 0 || res.stdout !== 'Terminating';
    }, { what: `namespace ${name} to finish terminating`, timeoutMs: 180_000, intervalMs: 1000 });
    let created = false;
    if (!(await this.exists('namespace', name))) {
      await this.kubectlOk(['create', 'namespace', name]);
      created = true;
    }
    await waitFor(() => this.exists('serviceaccount', 'default', name), { what: `the default ServiceAccount in ${name}`, timeoutMs: 60_000, intervalMs: 250 });
    return created;
  }

  /** Server-side dry run of a manifest stream; the objects as the API server returned them. */
  async dryRun(manifests: string): Promise<K8sObject[]> {
    const res = await this.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: manifests });
    if (res.status !== 0) throw new Error(`the API server refused the manifests:\n${res.stderr}`);
    const parsed = JSON.parse(res.stdout) as K8sObject & { items?: K8sObject[] };
    return parsed.kind === 'List' ? (parsed.items ?? []) : [parsed];
  }
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  rules?: any[];
  roleRef?: any;
  subjects?: any[];
}

export function kinds(objects: K8sObject[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}
