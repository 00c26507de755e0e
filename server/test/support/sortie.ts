import pino from 'pino';
import { startSortie, type Sortie } from '../../src/main.js';
import { testConfig } from './harness.js';

// Kept only for the files that still boot Sortie themselves; new tests use startTestSortie.
export { Api } from './api.js';
export { scratchDir, testConfig, writeApps } from './harness.js';
export { DEMO_APPS, REPO_ROOT } from './paths.js';

export async function boot(dir: string, env: Record<string, string> = {}): Promise<Sortie> {
  const config = testConfig(dir, env);
  return startSortie(config, { logger: pino({ level: config.logLevel }) });
}
