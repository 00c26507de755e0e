import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { RunnerMetrics } from '../metrics/metrics.js';
import type { Runner } from './runner.js';

/**
 * Picks the engine named by SORTIE_RUNNER. Each is imported only when chosen, so the
 * embedded default never loads the Kubernetes client.
 */
export async function createRunner(config: Config, logger: Logger, metrics?: RunnerMetrics): Promise<Runner> {
  if (config.runner === 'kubernetes') {
    const { KubernetesRunner } = await import('./kubernetes/kubernetes-runner.js');
    const { loadKubeConfig } = await import('./kubernetes/kube-client.js');
    return new KubernetesRunner({
      kubeConfig: loadKubeConfig(config.kubernetes.kubeconfig),
      namespace: config.kubernetes.namespace,
      sidecarImage: config.kubernetes.sidecarImage,
      imagePullPolicy: config.kubernetes.imagePullPolicy,
      home: config.kubernetes.home,
      logger: logger.child({ runner: 'kubernetes' }),
      metrics,
    });
  }
  const { LocalRunner } = await import('./local/local-runner.js');
  return new LocalRunner({ stateDir: config.local.stateDir, logger: logger.child({ runner: 'local' }) });
}
