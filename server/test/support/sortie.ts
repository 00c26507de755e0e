import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startSortie, type Sortie } from '../../src/main.js';
import type { Session } from '../../src/sessions/session.js';

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

/** A small client for the HTTP API that returns status and parsed JSON. */
export class Api {
  constructor(private readonly base: string) {}

  async request<T = unknown>(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(this.base + urlPath, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: callers that care assert on it
    }
    return { status: res.status, body: parsed as T };
  }

  async launch(appId: string, userId?: string): Promise<Session> {
    const res = await this.request<Session>('POST', '/api/sessions', { app_id: appId, ...(userId ? { user_id: userId } : {}) });
    if (res.status !== 201) throw new Error(`launch ${appId}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async session(id: string): Promise<Session> {
    const res = await this.request<Session>('GET', `/api/sessions/${id}`);
    if (res.status !== 200) throw new Error(`get ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** Polls until the session leaves `creating` (or has the wanted status), within `ms`. */
  async waitFor(id: string, wanted: Session['status'], ms = 30_000): Promise<Session> {
    const deadline = Date.now() + ms;
    let last: Session | undefined;
    while (Date.now() < deadline) {
      last = await this.session(id);
      if (last.status === wanted) return last;
      if (last.status !== 'creating' && last.status !== wanted && wanted !== 'terminated') {
        throw new Error(`session ${id} is ${last.status} (${last.reason ?? 'no reason'}), wanted ${wanted}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`session ${id} still ${last?.status} after ${ms} ms, wanted ${wanted}`);
  }
}
