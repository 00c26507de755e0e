import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../../errors.js';

/**
 * In a pod (KUBERNETES_SERVICE_HOST set) Sortie uses its ServiceAccount; elsewhere KUBECONFIG
 * or ~/.kube/config. Unlike KubeConfig.loadFromDefault, a missing configuration is an error
 * rather than a silent fallback to http://localhost:8080. `kubeconfig` is config.kubernetes.kubeconfig
 * (KUBECONFIG: one file, or several joined by path.delimiter).
 */
export function loadKubeConfig(kubeconfig?: string, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (env.KUBERNETES_SERVICE_HOST) {
      kc.loadFromCluster();
      return kc;
    }
    const files = (kubeconfig ?? '').split(path.delimiter).filter(Boolean);
    if (files.length === 0) {
      const home = path.join(env.HOME ?? os.homedir(), '.kube', 'config');
      if (!fs.existsSync(home)) {
        throw new ConfigError(
          'No Kubernetes configuration found: set KUBECONFIG, create ~/.kube/config, or run Sortie inside the cluster (SORTIE_RUNNER=kubernetes)',
        );
      }
      files.push(home);
    }
    kc.loadFromFile(files[0]!);
    for (const file of files.slice(1)) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      kc.mergeConfig(more);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`Could not load the Kubernetes configuration: ${(err as Error).message}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new ConfigError(`The Kubernetes configuration has no current context/cluster (current-context: "${kc.getCurrentContext()}")`);
  }
  return kc;
}
