import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startSortie, type Sortie } from '../../src/main.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
export const DEMO_APPS = path.join(REPO_ROOT, 'examples', 'apps.json');

/** A scratch folder for one test file's database, runner state and catalogs. */
export function scratchDir(name: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `sortie-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeApps(dir: string, applications: unknown[]): string {
  const file = path.join(dir, `apps-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ applications }));
  return file;
}

/** Config as an operator would give it: environment variables, on port 0. */
export function testConfig(dir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    SORTIE_PORT: '0',
    SORTIE_HOST: '127.0.0.1',
    SORTIE_APPS_FILE: DEMO_APPS,
    SORTIE_DB_PATH: path.join(dir, 'sortie.db'),
    SORTIE_LOG_LEVEL: process.env.SORTIE_TEST_LOG_LEVEL ?? 'silent',
    // The core tests are about sessions; the auth tests switch sign-in on themselves.
    SORTIE_AUTH: 'disabled',
    ...env,
  });
}

export async function boot(dir: string, env: Record<string, string> = {}): Promise<Sortie> {
  const config = testConfig(dir, env);
  return startSortie(config, { logger: pino({ level: config.logLevel }) });
}

/** The one HTTP client (kept importable from here for the files that boot Sortie themselves). */
export { Api } from './api.js';
