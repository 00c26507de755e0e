import path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
/** The catalog a fresh checkout ships, which tests use unless they bring their own. */
export const DEMO_APPS = path.join(REPO_ROOT, 'examples', 'apps.json');
