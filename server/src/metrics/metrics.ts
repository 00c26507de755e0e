import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ALL_STATUSES, type SessionStatus } from '../sessions/session.js';

/**
 * Why a session failed, as a bounded label: the place in the session service where it
 * failed, not the reason's text (image names, exit codes and messages would make a new
 * series for every failure).
 *  - `launch_refused`: the runner could not create the workload (quota, API refused, bad app);
 *  - `start_timeout`: not ready within POD_READY_TIMEOUT;
 *  - `workload_failed`: the runner reported the workload broken (image pull, crash, OOM, deleted);
 *  - `workload_lost`: found ended when Sortie started again;
 *  - `app_removed`: its app left the catalog while it waited in the queue.
 */
export type FailureCause = 'launch_refused' | 'start_timeout' | 'workload_failed' | 'workload_lost' | 'app_removed';

/** A runner call that failed: creating or removing a workload, or watching them (Kubernetes API server). */
export type RunnerOperation = 'launch' | 'stop' | 'watch';

/** What the Kubernetes runner may report; the rest of the metrics are none of its business. */
export interface RunnerMetrics {
  runnerError(operation: RunnerOperation): void;
}

/** Which side of the relay's opening failed: the session's VNC server (or websockify), or the viewer. */
export type HandshakeSide = 'session' | 'viewer';

export interface MetricsOptions {
  /** `local` or `kubernetes`: a label of launch times and runner errors. */
  runner: string;
  /** Sessions by status and app, read from the database at each scrape. */
  sessionCounts: () => Promise<Array<{ status: SessionStatus; app_id: string; count: number }>>;
  /** Sessions waiting in warm pools (unclaimed), read from the database at each scrape; absent: none. */
  pooledSessions?: () => Promise<Array<{ app_id: string; status: SessionStatus }>>;
}

// Launches take from a fraction of a second (local runner, warm pool) to minutes (an image pull).
const LAUNCH_BUCKETS = [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300];
const QUEUE_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

/**
 * Sortie's Prometheus metrics, in a registry of its own (not prom-client's global one), so
 * several Sortie instances in one process (tests, benchmarks) never share or clash. The
 * rest of the code calls the one-line hooks below where things happen; everything about
 * names, labels and units is here.
 */
export class Metrics {
  readonly registry = new Registry();

  private readonly launchSeconds: Histogram<'runner' | 'app'>;
  private readonly queueWaitSeconds: Histogram<'app'>;
  private readonly failures: Counter<'app' | 'reason'>;
  private readonly runnerErrors: Counter<'runner' | 'operation'>;
  private readonly handshakeFailures: Counter<'side'>;
  private readonly streamRefusals: Counter<'code'>;
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly poolHits: Counter<'app'>;
  private readonly poolMisses: Counter<'app'>;

  /** Viewer sockets of open streams: their byte counters are read at scrape time, so relaying costs nothing extra. */
  private readonly openStreams = new Set<Duplex>();
  /** Bytes of streams already closed. */
  private readonly closedBytes = { to_viewer: 0, from_viewer: 0 };
  /** The sessions' counts of the scrape under way: one database read serves both gauges. */
  private counts: ReturnType<MetricsOptions['sessionCounts']> | undefined;

  constructor(private readonly o: MetricsOptions) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    const counts = () => (this.counts ??= o.sessionCounts());
    new Gauge({
      name: 'sortie_sessions',
      help: 'Sessions in the database by status and app (failed and terminated ones included)',
      labelNames: ['status', 'app'] as const,
      registers,
      async collect() {
        const rows = await counts();
        this.reset();
        // Every status of every app, zeros included, so a series does not vanish when its count drops to 0.
        for (const app of new Set(rows.map((r) => r.app_id))) for (const status of ALL_STATUSES) this.set({ status, app }, 0);
        for (const row of rows) this.set({ status: row.status, app: row.app_id }, row.count);
      },
    });
    new Gauge({
      name: 'sortie_queue_length',
      help: 'Sessions waiting in the launch queue (SORTIE_MAX_SESSIONS or an app\'s max_sessions reached)',
      registers,
      async collect() {
        this.set((await counts()).filter((r) => r.status === 'queued').reduce((sum, r) => sum + r.count, 0));
      },
    });
    this.launchSeconds = new Histogram({
      name: 'sortie_session_launch_seconds',
      help: 'Time from the launch request to the session running (queue wait included)',
      labelNames: ['runner', 'app'] as const,
      buckets: LAUNCH_BUCKETS,
      registers,
    });
    this.queueWaitSeconds = new Histogram({
      name: 'sortie_queue_wait_seconds',
      help: 'Time a session waited in the launch queue before it started (0 when there was room at once)',
      labelNames: ['app'] as const,
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.failures = new Counter({
      name: 'sortie_session_failures_total',
      help: 'Sessions that failed, by app and cause (launch_refused, start_timeout, workload_failed, workload_lost, app_removed)',
      labelNames: ['app', 'reason'] as const,
      registers,
    });
    this.runnerErrors = new Counter({
      name: 'sortie_runner_errors_total',
      help: 'Runner calls that failed: creating (launch) or removing (stop) a workload, or the Kubernetes pod watch (watch)',
      labelNames: ['runner', 'operation'] as const,
      registers,
    });

    const streams = this.openStreams;
    new Gauge({
      name: 'sortie_streams_open',
      help: 'Desktop streams being relayed now (one per viewer)',
      registers,
      collect() {
        this.set(streams.size);
      },
    });
    const bytes = () => this.bytesRelayed();
    new Counter({
      name: 'sortie_stream_bytes_total',
      help: 'Bytes relayed between viewers and sessions, as the viewer\'s WebSocket carried them (to_viewer, from_viewer)',
      labelNames: ['direction'] as const,
      registers,
      collect() {
        const now = bytes();
        this.reset();
        this.inc({ direction: 'to_viewer' }, now.to_viewer);
        this.inc({ direction: 'from_viewer' }, now.from_viewer);
      },
    });
    this.handshakeFailures = new Counter({
      name: 'sortie_stream_handshake_failures_total',
      help: 'Streams whose opening failed: the session side (unreachable, VNC password refused) or the viewer side (not VNC, too large, timed out)',
      labelNames: ['side'] as const,
      registers,
    });
    this.streamRefusals = new Counter({
      name: 'sortie_stream_refusals_total',
      help: 'Stream requests answered with a close code instead of a stream (4401 not signed in, 4404 unknown, 4429 too many viewers, 4502 unreachable, …)',
      labelNames: ['code'] as const,
      registers,
    });
    this.httpRequests = new Counter({
      name: 'sortie_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    });

    const pooled = o.pooledSessions;
    new Gauge({
      name: 'sortie_pool_sessions',
      help: 'Sessions waiting in warm pools, unclaimed, by app and state (ready: running; starting: creating)',
      labelNames: ['app', 'state'] as const,
      registers,
      async collect() {
        const rows = pooled ? await pooled() : [];
        this.reset();
        for (const row of rows) this.inc({ app: row.app_id, state: row.status === 'running' ? 'ready' : 'starting' });
      },
    });
    this.poolHits = new Counter({
      name: 'sortie_pool_hits_total',
      help: 'Launches of a pooled app served at once by a ready session from its warm pool',
      labelNames: ['app'] as const,
      registers,
    });
    this.poolMisses = new Counter({
      name: 'sortie_pool_misses_total',
      help: 'Launches of a pooled app that found no ready session in its warm pool and started cold',
      labelNames: ['app'] as const,
      registers,
    });
  }

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.counts = undefined;
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.counts = undefined;
    }
  }

  // --- Hooks ------------------------------------------------------------------------

  /** A session became `running`: the time since its launch request. */
  sessionRunning(row: { app_id: string; created_at: string; updated_at: string }): void {
    this.launchSeconds.observe({ runner: this.o.runner, app: row.app_id }, secondsBetween(row.created_at, row.updated_at));
  }

  /** A session left the queue (became `creating`) at `at`. */
  sessionStarted(row: { app_id: string; created_at: string }, at: string): void {
    this.queueWaitSeconds.observe({ app: row.app_id }, secondsBetween(row.created_at, at));
  }

  /** A launch of an app with a warm pool: served from the pool (`hit`) or started cold. */
  poolLaunch(appId: string, hit: boolean): void {
    (hit ? this.poolHits : this.poolMisses).inc({ app: appId });
  }

  sessionFailed(appId: string, cause: FailureCause): void {
    this.failures.inc({ app: appId, reason: cause });
    // The runner could not create the workload: that is a failed runner call too.
    if (cause === 'launch_refused') this.runnerError('launch');
  }

  runnerError(operation: RunnerOperation): void {
    this.runnerErrors.inc({ runner: this.o.runner, operation });
  }

  /** The relay began piping a viewer's stream. */
  streamOpened(viewer: Duplex): void {
    this.openStreams.add(viewer);
  }

  /** The viewer's stream ended; its bytes join the closed streams' count. */
  streamClosed(viewer: Duplex): void {
    if (!this.openStreams.delete(viewer)) return;
    const { to_viewer, from_viewer } = socketBytes(viewer);
    this.closedBytes.to_viewer += to_viewer;
    this.closedBytes.from_viewer += from_viewer;
  }

  handshakeFailed(side: HandshakeSide): void {
    this.handshakeFailures.inc({ side });
  }

  streamRefused(code: number): void {
    this.streamRefusals.inc({ code: String(code) });
  }

  /** `route` is the matched route's pattern (bounded); requests that matched none share one label. */
  httpResponse(method: string, route: string | undefined, status: number): void {
    this.httpRequests.inc({ method, route: route ?? 'unmatched', status: String(status) });
  }

  private bytesRelayed(): { to_viewer: number; from_viewer: number } {
    const total = { ...this.closedBytes };
    for (const viewer of this.openStreams) {
      const bytes = socketBytes(viewer);
      total.to_viewer += bytes.to_viewer;
      total.from_viewer += bytes.from_viewer;
    }
    return total;
  }
}

/** What a viewer's socket has carried, handshake and WebSocket framing included. */
function socketBytes(viewer: Duplex): { to_viewer: number; from_viewer: number } {
  const socket = viewer as Partial<{ bytesWritten: number; bytesRead: number }>;
  return { to_viewer: socket.bytesWritten ?? 0, from_viewer: socket.bytesRead ?? 0 };
}

function secondsBetween(from: string, to: string): number {
  return Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
}

/**
 * SORTIE_METRICS_TOKEN as a scraper presents it: `Authorization: Bearer <token>`. Both
 * sides are hashed first, so the comparison takes the same time whatever the length or
 * the first differing byte.
 */
export class MetricsToken {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
  }

  admits(headers: IncomingHttpHeaders): boolean {
    const presented = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1] ?? '';
    return timingSafeEqual(sha256(presented), this.digest);
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
