import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { Principal } from '../../src/auth/principal.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { PAGE_LIMIT_MAX } from '../../src/contract/pages.js';
import { ACTIVE_STATUSES } from '../../src/contract/sessions.js';
import { startSortie, type Sortie, type StartOptions } from '../../src/main.js';
import type { Runner } from '../../src/runners/runner.js';
import type { SessionListKey } from '../../src/sessions/session-repository.js';
import { Api } from './api.js';
import { DEMO_APPS } from './paths.js';
import { dropTestDatabase, testDatabaseKind, testDatabaseUrl } from './postgres.js';
import { RfbViewer, type ConnectOptions, type Desktop } from './rfb.js';

/** A scratch folder for one test's database, runner state and catalogs. */
export function scratchDir(name: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `sortie-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes a catalog (an apps.json) into `dir` and answers with its path. */
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

export interface TestSortieOptions {
  /** Names the scratch folder, so a leftover one says which test made it. */
  name: string;
  /** Settings as an operator gives them (SORTIE_AUTH, POD_READY_TIMEOUT, SORTIE_DB_PATH, …). */
  env?: Record<string, string>;
  /** A catalog for this Sortie (written to an apps file); default: the demo apps. */
  apps?: unknown[];
  /** A runner in place of the one SORTIE_RUNNER picks (a FakeRunner). */
  runner?: Runner;
  /** Shorter background passes (the queue tick, the orphan sweep) for a test that waits on them. */
  sessionTimers?: StartOptions['sessionTimers'];
  /** A shorter sign-in check of open streams for a test that waits on it. */
  signInCheckIntervalMs?: number;
  /** Where Sortie logs (a test that reads its log); default: silent, or SORTIE_TEST_LOG_LEVEL. */
  logger?: Logger;
  /**
   * A folder the test owns instead of a fresh one: one an earlier TestSortie left (see
   * `stop`), so the same database and runner state are found as a restart finds them, or
   * one the test prepared. Cleanup leaves it for its owner to remove.
   */
  dir?: string;
}

export interface TestSortie {
  sortie: Sortie;
  url: string;
  /** The scratch folder: database, runner state, catalogs. */
  dir: string;
  /** Where the local runner keeps its session records. */
  stateDir: string;
  /** A client with no token; `api.as(token)` and `signIn` give signed-in ones. */
  api: Api;
  /** ws:// for a path on this Sortie (a session's websocket_url). */
  wsUrl: (urlPath: string) => string;
  /** A VNC viewer on a session's stream, through the RFB handshake. */
  openStream: (sessionId: string, options?: ConnectOptions) => Promise<{ viewer: RfbViewer; desktop: Desktop }>;
  /** Signs in over HTTP and answers with a client acting as that user. */
  signIn: (username: string, password: string) => Promise<Api>;
  /** Stops serving, as on SIGTERM: sessions keep running and the folder stays, for a restart. */
  stop: () => Promise<void>;
  /**
   * Ends every session still live (what a failed test left behind: sessions outlive Sortie
   * by design), stops Sortie and removes the scratch folder. Safe to call more than once.
   */
  cleanup: () => Promise<void>;
}

/** Ends sessions on the harness's behalf, past any sign-in, as the service itself. */
const HARNESS: Principal = { userId: 'test-harness', username: 'the test harness', role: 'admin' };

/**
 * A real Sortie (HTTP API, session service, SQLite file or PostgreSQL database, relay) in this process, on a
 * port of its own, with what a test needs to talk to it and to leave nothing behind.
 * In the manner of code-server's test/utils/integration.ts.
 */
export async function startTestSortie(options: TestSortieOptions): Promise<TestSortie> {
  const scratch = options.dir ? { dir: options.dir, remove: () => {} } : scratchDir(options.name);
  const env = { ...options.env };
  // SORTIE_TEST_DATABASE=postgres runs the same tests on PostgreSQL: a database per scratch
  // folder, so a restart on the same folder finds the same database. A test that names its
  // SQLite file (or a database URL) itself keeps it.
  const onPostgres = testDatabaseKind() === 'postgres' && env.SORTIE_DB_PATH === undefined && env.SORTIE_DATABASE_URL === undefined;
  if (onPostgres) env.SORTIE_DATABASE_URL = await testDatabaseUrl(scratch.dir);
  const removeScratch = async () => {
    scratch.remove();
    if (onPostgres && !options.dir) await dropTestDatabase(scratch.dir);
  };
  if (options.apps) env.SORTIE_APPS_FILE = writeApps(scratch.dir, options.apps);
  let sortie: Sortie;
  let stateDir: string;
  try {
    const config = testConfig(scratch.dir, env);
    stateDir = config.local.stateDir;
    sortie = await startSortie(config, { logger: options.logger ?? pino({ level: config.logLevel }), ...(options.runner ? { runner: options.runner } : {}), ...(options.sessionTimers ? { sessionTimers: options.sessionTimers } : {}), ...(options.signInCheckIntervalMs !== undefined ? { signInCheckIntervalMs: options.signInCheckIntervalMs } : {}) });
  } catch (err) {
    await removeScratch();
    throw err;
  }
  const api = new Api(sortie.url);
  const wsUrl = (urlPath: string) => sortie.url.replace(/^http/, 'ws') + urlPath;
  let stopped = false;
  const stop = async () => {
    stopped = true;
    await sortie.dispose();
  };
  let cleaned: Promise<void> | undefined;
  return {
    sortie,
    url: sortie.url,
    dir: scratch.dir,
    stateDir,
    api,
    wsUrl,
    openStream: (sessionId, connect = {}) => RfbViewer.connect(wsUrl(`/ws/sessions/${sessionId}`), connect),
    signIn: (username, password) => api.signedIn(username, password),
    stop,
    cleanup: () =>
      (cleaned ??= (async () => {
        try {
          if (!stopped) {
            let after: SessionListKey | undefined;
            do {
              const page = await sortie.sessions.list(HARNESS, { statuses: ACTIVE_STATUSES }, { limit: PAGE_LIMIT_MAX, after });
              for (const session of page.sessions) {
                if (session.status !== 'failed' && session.status !== 'terminated') await sortie.sessions.end(HARNESS, session.id);
              }
              after = page.next ?? undefined;
            } while (after);
          }
        } finally {
          await sortie.dispose();
          await removeScratch();
        }
      })()),
  };
}
