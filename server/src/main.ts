import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import pino, { type Logger } from 'pino';
import { AppRepository } from './catalog/app-repository.js';
import { readCatalogFile } from './catalog/catalog-file.js';
import { loadConfig, type Config } from './config/config.js';
import { openDatabase } from './db/database.js';
import { buildHttpServer } from './http/http-server.js';
import { createRunner } from './runners/create-runner.js';
import type { Runner } from './runners/runner.js';
import { SessionRepository } from './sessions/session-repository.js';
import { SessionService } from './sessions/session-service.js';
import { CloseCode } from './stream/close-codes.js';
import { StreamRelay, type StreamTarget } from './stream/relay.js';
import { sql } from 'kysely';

export interface Sortie {
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  port: number;
  sessions: SessionService;
  runner: Runner;
  /** Stops serving and watching. Sessions keep running; the next start adopts them. */
  dispose: () => Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Tests inject a runner; production picks one from SORTIE_RUNNER. */
  runner?: Runner;
}

/** The composition root: config → database → catalog → runner → services → HTTP. */
export async function startSortie(config: Config, options: StartOptions = {}): Promise<Sortie> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'sortie' } });
  const apps = readCatalogFile(config.appsFile);

  const db = await openDatabase(config.dbPath);
  const appRepository = new AppRepository(db);
  await appRepository.replaceAll(apps);

  const runner = options.runner ?? (await createRunner(config, logger));
  const sessions = new SessionService({
    sessions: new SessionRepository(db),
    apps: appRepository,
    runner,
    logger,
    podReadyTimeoutMs: config.podReadyTimeoutSeconds * 1000,
    sessionTimeoutMs: config.sessionTimeoutMinutes * 60_000,
  });

  const handleEvent = (event: Parameters<SessionService['handle']>[0]) =>
    void sessions.handle(event).catch((err: unknown) => logger.error({ err, event }, 'runner event handling failed'));
  const workloads = await runner.start(handleEvent);
  const reconciled = await sessions.reconcile(workloads);
  logger.info({ runner: runner.kind, ...reconciled }, 'reconciled sessions with workloads');

  const relay = new StreamRelay({
    logger,
    resolve: (id) => streamTarget(sessions, id),
    onActivity: (id) => void sessions.touch([id]).catch((err: unknown) => logger.warn({ err }, 'touch failed')),
  });
  sessions.onEnded((session) => relay.closeSession(session.id));

  const http = await buildHttpServer({
    logger,
    apps: appRepository,
    sessions,
    relay,
    webDir: config.webDir,
    isReady: async () => {
      await sql`select 1`.execute(db);
      return true;
    },
  });
  await http.listen({ port: config.port, host: config.host });
  const { port } = http.server.address() as AddressInfo;

  const cleanup = setInterval(() => {
    void (async () => {
      await sessions.touch(relay.activeSessionIds());
      const expired = await sessions.expireIdle();
      if (expired > 0) logger.info({ expired }, 'ended idle sessions');
    })().catch((err: unknown) => logger.error({ err }, 'session cleanup failed'));
  }, config.cleanupIntervalMinutes * 60_000);
  cleanup.unref();

  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.info({ url: `http://${host}:${port}`, runner: runner.kind, apps: apps.length }, 'Sortie is listening');

  let disposed: Promise<void> | undefined;
  const dispose = () =>
    (disposed ??= (async () => {
      clearInterval(cleanup);
      sessions.close();
      relay.close();
      await http.close();
      await runner.close();
      await db.destroy();
    })());

  return { url: `http://${host}:${port}`, port, sessions, runner, dispose };
}

async function streamTarget(sessions: SessionService, id: string): Promise<StreamTarget> {
  const found = await sessions.streamTarget(id).catch(() => undefined);
  if (!found) return { ok: false, code: CloseCode.SessionNotFound, reason: `No session with id "${id}"` };
  const { session, endpoint } = found;
  if (endpoint) return { ok: true, endpoint };
  if (session.status === 'creating') return { ok: false, code: CloseCode.SessionNotRunning, reason: 'The session is still starting' };
  return { ok: false, code: CloseCode.SessionEnded, reason: `The session has ${session.status === 'failed' ? 'failed' : 'ended'}` };
}

async function main(): Promise<void> {
  let sortie: Sortie;
  try {
    sortie = await startSortie(loadConfig());
  } catch (err) {
    // Configuration and catalog mistakes: one readable line, no stack trace.
    console.error(`Sortie cannot start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  // SIGTERM (a rolling update, Ctrl-C) stops Sortie but leaves sessions running.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void sortie.dispose().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) void main();
