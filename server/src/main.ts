import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import pino, { type Logger } from 'pino';
import { AuditLog } from './audit/audit-log.js';
import { AuditRepository } from './audit/audit-repository.js';
import { AuthService } from './auth/auth-service.js';
import { OidcClient } from './auth/oidc.js';
import { UserRepository } from './auth/user-repository.js';
import { AppRepository } from './catalog/app-repository.js';
import { readCatalogFile } from './catalog/catalog-file.js';
import { CatalogService } from './catalog/catalog-service.js';
import { loadConfig, type Config } from './config/config.js';
import { coordinationFor } from './db/coordination.js';
import { openDatabase } from './db/database.js';
import { createLogger } from './logging.js';
import { UnauthorizedError } from './errors.js';
import { authenticator as makeAuthenticator } from './http/auth-hook.js';
import type { RouteInfo } from './http/access-gate.js';
import { HostPolicy } from './http/host-policy.js';
import { clientAddressOf } from './http/client-address.js';
import { buildHttpServer } from './http/http-server.js';
import { OriginPolicy } from './http/origin-policy.js';
import { RequestGate } from './http/request-gate.js';
import { buildMetricsServer } from './http/metrics-routes.js';
import { Metrics, MetricsToken } from './metrics/metrics.js';
import { createRunner } from './runners/create-runner.js';
import type { Runner } from './runners/runner.js';
import { SessionRepository } from './sessions/session-repository.js';
import { IdleSweep } from './sessions/idle-sweep.js';
import { SessionFiles } from './sessions/session-files.js';
import { SessionService, type SessionServiceOptions } from './sessions/session-service.js';
import { LocalSessionFeed, PostgresSessionFeed } from './sessions/session-feed.js';
import { SessionEvents } from './http/session-events.js';
import { UserHomeService } from './sessions/user-homes.js';
import { CloseCode } from './stream/close-codes.js';
import { PreopenedUpstreams } from './stream/preopened-upstreams.js';
import { StreamHandoff } from './stream/stream-handoff.js';
import { StreamRelay, STREAM_DEFAULTS } from './stream/relay.js';
import { streamAccess } from './stream/stream-access.js';
import { StreamSignIns } from './stream/stream-sign-ins.js';
import { Recorder } from './recordings/recorder.js';
import { RecordingRepository } from './recordings/recording-repository.js';
import { RecordingService } from './recordings/recording-service.js';
import { ShareRepository } from './shares/share-repository.js';
import { shareRoutes } from './shares/share-routes.js';
import { ShareService } from './shares/share-service.js';
import { StartupUndo } from './startup-undo.js';

export interface Sortie {
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  port: number;
  sessions: SessionService;
  runner: Runner;
  /** Every HTTP route and the access it declared. */
  routes: () => RouteInfo[];
  /** Where `GET /metrics` is served (SORTIE_METRICS_PORT, or the main port with SORTIE_METRICS_TOKEN); undefined when off. */
  metricsUrl: string | undefined;
  /**
   * Starts shutting down without stopping to serve: `/readyz` answers 503 `draining`, new
   * streams are refused with 4503 and open ones closed with 4307 (viewers reconnect at once,
   * through another replica). Resolves once the streams are gone. Sessions are untouched.
   */
  drain: () => Promise<void>;
  /** Drains, then stops serving and watching. Sessions keep running; the next start adopts them. */
  dispose: () => Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Tests and benchmarks inject a runner; production picks one from SORTIE_RUNNER. */
  runner?: Runner;
  /** How often the session service's background passes run; tests shorten them. Default: the service's own. */
  sessionTimers?: Pick<SessionServiceOptions, 'queuePassIntervalMs' | 'orphanSweepIntervalMs'>;
  /** How often open desktop streams have their sign-ins checked; tests shorten it. Default: SIGN_IN_CHECK_INTERVAL_MS (25 s). */
  signInCheckIntervalMs?: number;
}

/** The composition root: config → database → catalog → auth → runner → services → HTTP. */
export async function startSortie(config: Config, options: StartOptions = {}): Promise<Sortie> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const undo = new StartupUndo(logger);
  try {
    return await start(config, options, logger, undo);
  } catch (err) {
    await undo.run();
    throw err;
  }
}

async function start(config: Config, options: StartOptions, logger: Logger, undo: StartupUndo): Promise<Sortie> {
  const apps = readCatalogFile(config.appsFile);

  const db = undo.add(
    'database',
    await openDatabase(config.databaseUrl ?? config.dbPath, {
      onPoolError: (err) => logger.warn({ err: err.message }, 'lost a PostgreSQL connection; the next query opens a new one'),
    }),
    (d) => d.destroy(),
  );
  // Replicas on one PostgreSQL take turns (admission, the queue) and one of them leads (reconciliation, the idle sweep, audit pruning).
  const coordination = undo.add('coordination', coordinationFor(db, config.databaseUrl ?? config.dbPath, logger), (c) => c.close());
  // First, so that everything after it is recorded; pruned now and then periodically.
  const audit = new AuditLog({ repository: new AuditRepository(db), logger, retentionDays: config.auditRetentionDays, leads: () => coordination.lead() });
  await audit.start();
  undo.add('audit log', audit, (a) => a.close());
  const appRepository = new AppRepository(db);
  const loaded = await appRepository.loadFromFile(apps);
  if (loaded.keptFromApi.length > 0) logger.info({ apps: loaded.keptFromApi }, 'apps edited through the API keep their edits over apps.json');
  audit.record({ action: 'catalog.load', actor: 'system', target: { type: 'catalog', id: config.appsFile }, details: { loaded: loaded.loaded, kept_from_api: loaded.keptFromApi } });

  const users = new UserRepository(db);
  const auth = await AuthService.create(users, config.auth, logger, audit);
  if (!config.auth.enabled) logger.warn('sign-in is switched off (SORTIE_AUTH=disabled): anyone who can reach Sortie can use every app and session');
  const gate = new RequestGate({
    authn: makeAuthenticator(auth, config.auth.enabled),
    origins: new OriginPolicy(config.auth.publicUrl, config.auth.allowedOrigins),
    hosts: config.auth.enabled
      ? undefined
      : new HostPolicy({ listenHost: config.host, publicUrl: config.auth.publicUrl, allowedOrigins: config.auth.allowedOrigins }),
    metricsToken: config.metrics.token ? new MetricsToken(config.metrics.token) : undefined,
  });
  const oidc = config.auth.enabled && config.auth.oidc ? new OidcClient(config.auth.oidc, auth.signerForState, logger) : undefined;
  const catalog = new CatalogService(appRepository, users, audit);

  // Its own registry per instance; sessions by status are counted at each scrape.
  const metrics = new Metrics({
    runner: options.runner?.kind ?? config.runner,
    sessionCounts: () => sessionRepository.countByStatusAndApp(),
    pooledSessions: () => sessionRepository.listPooled(),
  });
  const runner = undo.add('runner', options.runner ?? (await createRunner(config, logger, metrics)), (r) => r.close());
  // SORTIE_MAX_SESSIONS, else what the runner can hold (the local runner measures the machine).
  const maxSessions = config.maxSessions ?? runner.capacity?.();
  logger.info({ maxSessions: maxSessions ?? 'unlimited', maxSessionsPerUser: config.maxSessionsPerUser }, 'session limits');
  const sessionRepository = new SessionRepository(db);
  // Recordings live in SORTIE_RECORDINGS_DIR (the chart's PersistentVolume, shared by replicas);
  // one left open by a stopped Sortie is closed where its file ends (beside other replicas,
  // once its file has gone quiet).
  const recordingRepository = new RecordingRepository(db);
  const recorder = undo.add('recorder', new Recorder({ dir: config.recordingsDir, repository: recordingRepository, logger, audit }), (r) => r.close());
  await recorder.repair(coordination.shared);
  const recordings = new RecordingService({
    repository: recordingRepository,
    recorder,
    logger,
    audit,
    retentionDays: config.recordingRetentionDays,
    leads: () => coordination.lead(),
    shared: coordination.shared,
  });
  await recordings.start();
  undo.add('recordings', recordings, (r) => r.close());
  const sessions = new SessionService({
    sessions: sessionRepository,
    catalog,
    runner,
    logger,
    userExists: async (userId) => !config.auth.enabled || (await users.get(userId)) !== undefined,
    podReadyTimeoutMs: config.podReadyTimeoutSeconds * 1000,
    sessionTimeoutMs: config.sessionTimeoutMinutes * 60_000,
    appById: (appId) => appRepository.get(appId),
    maxSessionsPerUser: config.maxSessionsPerUser,
    maxSessions: maxSessions ?? Infinity,
    maxStarting: runner.startLimit?.(),
    audit,
    metrics,
    coordination,
    apps: () => appRepository.list(),
    recordings: recordingRepository,
    ...options.sessionTimers,
  });
  // An app created, edited or removed: its warm pool grows, is replaced or ends at once.
  catalog.onChange(() => void sessions.refillPools());

  undo.add('sessions', sessions, (s) => s.close());
  const reconciled = await sessions.start();
  logger.info({ runner: runner.kind, ...reconciled }, 'reconciled sessions with workloads');

  // A warm launch's first viewer finds the pooled session's side of its stream already open.
  const preopened = undo.add('streams opened ahead', new PreopenedUpstreams({ logger, handshakeTimeoutMs: STREAM_DEFAULTS.handshakeTimeoutMs, maxHandshakeBytes: STREAM_DEFAULTS.maxHandshakeBytes }), (p) => p.close());
  const relay = new StreamRelay({
    logger,
    resolve: streamAccess(gate, sessions),
    onActivity: (id) => void sessions.touch([id]).catch((err: unknown) => logger.warn({ err }, 'touch failed')),
    maxViewersPerSession: config.maxViewersPerSession,
    pingIntervalMs: config.streamPingIntervalSeconds * 1000,
    audit,
    addressOf: clientAddressOf(config.trustedProxies),
    metrics,
    recorder,
    preopened,
  });
  undo.add('relay', relay, (r) => r.close());
  sessions.onEnded((session) => relay.closeSession(session.id));
  // A stream is authorised as it opens; afterwards its sign-in is checked here, at once where
  // the sign-in ended (or the user changed) and every interval for changes made on other
  // replicas. With sign-in off there are no sign-ins to end.
  const streamSignIns = config.auth.enabled
    ? new StreamSignIns({
        streams: () => relay.openStreams(),
        signIn: async (loginId) => {
          const active = await users.activeLogin(loginId, new Date().toISOString());
          return active && { userId: active.user.id, role: active.user.role };
        },
        logger,
        ...(options.signInCheckIntervalMs !== undefined ? { intervalMs: options.signInCheckIntervalMs } : {}),
      })
    : undefined;
  if (streamSignIns) {
    streamSignIns.start();
    undo.add('sign-in checks of streams', streamSignIns, (c) => c.close());
    auth.onAccessChanged(() => void streamSignIns.checkNow());
  }
  sessions.onPooledRunning((pooled) => preopened.open(pooled.id, pooled.endpoint, pooled.secret));
  for (const pooled of await sessions.pooledRunning()) preopened.open(pooled.id, pooled.endpoint, pooled.secret);
  // Across replicas on PostgreSQL (NOTIFY/LISTEN); in-process on SQLite, which has one replica.
  const feed = undo.add('session feed', config.databaseUrl ? await PostgresSessionFeed.open(config.databaseUrl, logger) : new LocalSessionFeed(), (f) => f.close());
  sessions.onChange((change) => feed.publish(change));
  // A draining replica names its streams first, so the replica each viewer reconnects through has the session's side open already.
  const handoff = new StreamHandoff({ channel: feed, preopened, runningStreams: (ids) => sessions.runningStreams(ids), logger });
  handoff.start();
  undo.add('stream handoff', handoff, (h) => h.close());
  // Shares of live sessions; ending a session ends its shares (its streams are cut with it).
  const shares = new ShareService({ shares: new ShareRepository(db), sessions: sessionRepository, users, feed, logger, audit });
  sessions.shares = shares;
  shares.start();
  undo.add('shares', shares, (s) => s.close());
  sessions.onEnded((session) => void shares.endAllOf(session).catch((err: unknown) => logger.error({ err, sessionId: session.id }, 'could not end the shares of an ended session')));
  // The relay's keep-alive interval suits proxies in front of event streams too.
  const events = undo.add('live updates', new SessionEvents({ feed, gate, heartbeatMs: config.streamPingIntervalSeconds * 1000 }), (e) => e.close());
  // Live-update streams end at once where a sign-in ended, not at their next heartbeat.
  auth.onAccessChanged(() => events.recheck());
  /** Set once Sortie starts shutting down. */
  let draining: Promise<void> | undefined;

  const { app: http, routes } = await buildHttpServer({
    logger,
    catalog,
    sessions,
    files: new SessionFiles({ sessions, runner, appById: (appId) => appRepository.get(appId), maxUploadBytes: config.maxUploadBytes }),
    homes: new UserHomeService({ sessions: sessionRepository, runner, appById: (appId) => appRepository.get(appId), audit }),
    audit,
    auth,
    authConfig: config.auth,
    gate,
    oidc,
    relay,
    events,
    recordings,
    webDir: config.webDir,
    trustedProxies: config.trustedProxies,
    metrics,
    // With a port of its own, /metrics is served there only.
    serveMetrics: config.metrics.token !== undefined && config.metrics.port === undefined,
    isReady: async () => {
      if (draining) return 'draining';
      await sql`select 1`.execute(db);
      return true;
    },
  });
  shareRoutes(http, shares);
  undo.add('HTTP server', http, (h) => h.close());
  await http.listen({ port: config.port, host: config.host });
  const { port } = http.server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;

  let metricsServer: Awaited<ReturnType<typeof buildMetricsServer>> | undefined;
  let metricsUrl = config.metrics.token !== undefined ? `http://${host}:${port}/metrics` : undefined;
  if (config.metrics.port !== undefined) {
    metricsServer = undo.add('metrics server', await buildMetricsServer({ logger, gate, metrics, tokenRequired: config.metrics.token !== undefined }), (m) => m.close());
    await metricsServer.listen({ port: config.metrics.port, host: config.host });
    metricsUrl = `http://${host}:${(metricsServer.server.address() as AddressInfo).port}/metrics`;
  }
  if (metricsUrl) logger.info({ url: metricsUrl, token: config.metrics.token !== undefined }, 'serving metrics');
  else logger.info('metrics are off: set SORTIE_METRICS_TOKEN (and/or SORTIE_METRICS_PORT) to serve GET /metrics');

  const idleSweep = new IdleSweep({ sessions, watched: () => relay.activeSessionIds(), intervalMs: config.cleanupIntervalMinutes * 60_000, logger });
  idleSweep.start();

  logger.info({ url: `http://${host}:${port}`, runner: runner.kind, apps: apps.length, auth: config.auth.enabled }, 'Sortie is listening');

  const drain = () =>
    (draining ??= (async () => {
      logger.info({ streams: relay.activeSessionIds().length }, 'draining: taking no new streams, closing open ones so viewers reconnect elsewhere');
      // With one replica (SQLite) there is nobody to hand over to, and nothing to wait for.
      await relay.drain(STREAMS_CLOSE_MS, coordination.shared ? handoff.announce(relay.activeSessionIds()) : undefined);
    })());
  let disposed: Promise<void> | undefined;
  const dispose = () =>
    (disposed ??= (async () => {
      await drain();
      idleSweep.stop();
      streamSignIns?.close();
      sessions.close();
      relay.close();
      handoff.close();
      preopened.close();
      recordings.close();
      await recorder.close();
      shares.close();
      events.close();
      await closeWithin(http.server, http.close(), REQUESTS_FINISH_MS);
      await metricsServer?.close();
      await runner.close();
      await audit.close();
      await coordination.close();
      await feed.close();
      await db.destroy();
    })());

  return { url: `http://${host}:${port}`, port, sessions, runner, routes: () => routes.list(), metricsUrl, drain, dispose };
}

/** How long viewers have to take their 4307 close frame before their sockets are dropped. */
const STREAMS_CLOSE_MS = 3000;
/** How long HTTP requests in flight may take to finish once Sortie stops listening. */
const REQUESTS_FINISH_MS = 10_000;
/**
 * How long a replica sent SIGTERM keeps listening (answering `/readyz` with 503, refusing new
 * streams with 4503) before it closes its port: a Service or load balancer takes a few
 * seconds to stop sending it new connections, which would be refused meanwhile.
 */
export const SIGTERM_LINGER_MS = 5000;

/** Resolves when `closing` does, or after `ms`, when the connections still open are cut. */
async function closeWithin(server: import('node:http').Server, closing: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms).unref()));
  await Promise.race([closing, late]);
  clearTimeout(timer);
  server.closeAllConnections();
}

/**
 * SIGTERM (a rolling update, an eviction) drains: streams go to another replica, this one
 * keeps answering for SIGTERM_LINGER_MS, then stops and exits 0. Ctrl-C stops at once. Sessions
 * keep running either way; a second signal ends the process as signals do.
 */
export function stopOnSignals(sortie: Pick<Sortie, 'drain' | 'dispose'>, lingerMs = SIGTERM_LINGER_MS): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void (async () => {
        await sortie.drain();
        if (signal === 'SIGTERM') await new Promise((resolve) => setTimeout(resolve, lingerMs));
        await sortie.dispose();
      })().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
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
  stopOnSignals(sortie);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) void main();
