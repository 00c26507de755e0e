import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { appSchema, type App } from './app.js';

const fileSchema = z.object({ applications: z.array(z.unknown()) });

/**
 * Reads an apps.json in the seed's format. Any problem stops start-up with a message that
 * names the file, the app and the field, because a half-loaded catalog is worse than none.
 */
export function readCatalogFile(file: string): App[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Cannot read catalog ${file}: ${(err as Error).message}`);
  }
  const top = fileSchema.safeParse(raw);
  if (!top.success) {
    throw new ConfigError(`Catalog ${file}: expected an object with an "applications" array`);
  }
  const apps: App[] = [];
  const seen = new Set<string>();
  top.data.applications.forEach((entry, index) => {
    const label = describeEntry(entry, index);
    const parsed = appSchema.safeParse(entry);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `field "${i.path.join('.') || '(app)'}" ${i.message}`);
      throw new ConfigError(`Catalog ${file}: app ${label}: ${problems.join('; ')}`);
    }
    if (seen.has(parsed.data.id)) {
      throw new ConfigError(`Catalog ${file}: app ${label}: id is used by an earlier app`);
    }
    seen.add(parsed.data.id);
    apps.push(parsed.data);
  });
  return apps;
}

function describeEntry(entry: unknown, index: number): string {
  const id = typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id !== '' ? `"${id}"` : `#${index + 1}`;
}
