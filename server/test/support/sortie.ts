import type { Sortie } from '../../src/main.js';
import { startTestSortie } from './harness.js';

// Only for admin-browser.test.ts until it uses startTestSortie; then this file goes.
export { Api } from './api.js';
export { scratchDir, writeApps } from './harness.js';

/** Sortie on a folder the caller owns and removes; `dispose()` stops it. */
export async function boot(dir: string, env: Record<string, string> = {}): Promise<Sortie> {
  return (await startTestSortie({ name: 'boot', dir, env })).sortie;
}
