import { randomInt, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditActor, AuditRecorder } from '../audit/audit-log.js';
import type { Principal } from '../auth/principal.js';
import type { SessionEndedBy } from '../contract/audit.js';
import type { App } from '../catalog/app.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import { InputError, NotFoundError, TooManyRequestsError } from '../errors.js';
import { workloadName, type Endpoint, type Runner, type Workload, type WorkloadEvent } from '../runners/runner.js';
import type { SessionsTable } from '../db/schema.js';
import type { FailureCause, Metrics } from '../metrics/metrics.js';
import type { SessionListKey, SessionRepository } from './session-repository.js';
import type { ShareService } from '../shares/share-service.js';
import { isLive, toSession, type Session, type SessionStatus } from './session.js';
import { LAUNCH_STEP_LABELS, type LaunchStep, type LaunchStepName } from '../contract/sessions.js';
import { InProcessCoordination, type Coordination } from '../db/coordination.js';
import { KeyedSerial } from './serial.js';
import { planRefill, poolDefinition, poolToYield, POOL_OWNER } from './warm-pool.js';

export interface SessionServiceOptions {
  sessions: SessionRepository;
  catalog: CatalogService;
  runner: Runner;
  /** Whether a user id an admin launches for exists; with sign-in off every id does. */
  userExists: (userId: string) => Promise<boolean>;
  logger: Logger;
  podReadyTimeoutMs: number;
  sessionTimeoutMs: number;
  /** The catalog's current definition of an app, looked up when a queued session starts. */
  appById: (appId: string) => Promise<App | undefined>;
  /** SORTIE_MAX_SESSIONS_PER_USER: queued, starting and running sessions one user may have. */
  maxSessionsPerUser: number;
  /** Sessions starting or running at once; the rest wait queued. Infinity for no limit. */
  maxSessions: number;
  /** Sessions starting at once (the runner's start limit); Infinity for no limit. */
  maxStarting?: number;
  now?: () => Date;
  /** Where launches and ends are recorded (who, from where); absent in tests that do not look. */
  audit?: AuditRecorder;
  /** Where launches, failures and runner errors are counted; absent in tests that do not look. */
  metrics?: Metrics;
  /** How replicas on one database take turns and which one leads; default: in process (one replica). */
  coordination?: Coordination;
  /**
   * How often a queue pass runs without a cause in this process: a session ended on another
   * replica that stopped before its own pass still frees room. Default 10 s.
   */
  queuePassIntervalMs?: number;
  /**
   * How often the leading replica looks for workloads whose session is over (see
   * removeOrphans); checked on the queue pass's tick, so never more often than that. Default 60 s.
   */
  orphanSweepIntervalMs?: number;
  /** The whole catalog, for warm pool refills; without it no app is pooled. */
  apps?: () => Promise<App[]>;
  /** Marks a session taken from a warm pool as recorded (a new one is inserted with the mark). */
  recordings?: { markRecorded(sessionId: string): Promise<void> };
}

/** More steps than any launch takes: a pod flapping between two steps cannot grow the list. */
const MAX_STEPS = 16;

/** What a 429 asks the caller to wait before trying again; room only frees when a session ends. */
const RETRY_AFTER_SECONDS = 30;

/** How long past POD_READY_TIMEOUT a start nobody here watches may take before the leader fails it. */
const LATE_START_GRACE_MS = 5_000;

/** How often the leader lists the runner's workloads to find those whose session is over. */
const ORPHAN_SWEEP_INTERVAL_MS = 60_000;

/** What a start-up's reconciliation did. */
export interface ReconcileSummary {
  adopted: number;
  removed: number;
  ended: number;
}

/** Callers get told when a session stops being live, so open streams can be closed. */
export type EndedListener = (session: Session) => void;

/** Told of every change a reader of sessions may care about: status, queue place, launch step. */
export type ChangeListener = (change: { id: string; user_id: string; status: SessionStatus; left_queue?: true }) => void;
/** A running session's stream: where it is and its VNC password. */
export interface RunningStream {
  id: string;
  endpoint: Endpoint;
  secret?: string;
}

/**
 * Owns session state. Runners report what their workloads do; this service decides what
 * that means for the session and writes it down. Every status change goes through
 * SessionRepository.transition, so final states stay final whatever order events arrive in.
 */
export class SessionService {
  /** Sessions shared with users who do not own them (server/src/shares), set at start-up; the API and the stream consult it. */
  shares?: ShareService;
  private readonly readyTimers = new Map<string, NodeJS.Timeout>();
  private readonly endedListeners: EndedListener[] = [];
  private readonly changeListeners: ChangeListener[] = [];
  private readonly pooledRunningListeners: Array<(pooled: RunningStream) => void> = [];
  private readonly now: () => Date;
  /**
   * The per-user count and the insert happen as one step (`admission`), so a burst cannot
   * pass the limit; one queue pass at a time (`queue`), a pass asked for during one runs
   * after it. Across every replica on the database.
   */
  private readonly coordination: Coordination;
  private queueTimer?: NodeJS.Timeout;
  private pendingPass?: Promise<void>;
  private pendingRefill?: Promise<void>;
  private closed = false;
  /** A session's runner events, handled one at a time in the order they came. */
  private readonly eventOrder = new KeyedSerial();
  /** Sessions inside their own create(): one its own queue pass starts never waited. */
  private readonly arriving = new Set<string>();
  /** Whether this replica led at the last look: one that starts leading sweeps at once. */
  private leading = false;
  /** When the last orphan sweep began (Date.now()), and the sweep under way. */
  private lastSweepAt = 0;
  private sweeping?: Promise<number>;
  /** Workloads the last sweep found without a live session: removed if the next one finds them so again. */
  private orphans = new Set<string>();

  constructor(private readonly o: SessionServiceOptions) {
    this.now = o.now ?? (() => new Date());
    this.coordination = o.coordination ?? new InProcessCoordination();
  }

  onEnded(listener: EndedListener): void {
    this.endedListeners.push(listener);
  }

  onChange(listener: ChangeListener): void {
    this.changeListeners.push(listener);
  }

  /**
   * Told when a pooled session starts running here (on the replica whose runner saw it
   * ready), so its first viewer's connection can be opened before anyone claims it.
   */
  onPooledRunning(listener: (pooled: RunningStream) => void): void {
    this.pooledRunningListeners.push(listener);
  }

  /** The pooled sessions running now, as onPooledRunning tells them: for a Sortie that just started. */
  async pooledRunning(): Promise<RunningStream[]> {
    return (await this.o.sessions.listPooled()).filter((row) => row.status === 'running' && row.endpoint).map(runningStream);
  }

  /** Those of `ids` that are running someone's desktop now, with where to reach it: for a stream handoff. */
  async runningStreams(ids: readonly string[]): Promise<RunningStream[]> {
    return (await this.o.sessions.listRunningOf(ids)).map(runningStream);
  }

  private changed(row: Pick<SessionsTable, 'id' | 'user_id' | 'status'>, leftQueue = false): void {
    for (const listener of this.changeListeners) listener({ id: row.id, user_id: row.user_id, status: row.status, ...(leftQueue ? { left_queue: true } : {}) });
  }

  /**
   * Starts a session of `appId` for the caller, or for `onBehalfOf` when the caller is an
   * admin. Everything that can be checked is checked before anything is created.
   */
  async create(principal: Principal, input: { appId: string; onBehalfOf?: string; record?: boolean }): Promise<Session> {
    const userId = principal.role === 'admin' && input.onBehalfOf ? input.onBehalfOf : principal.userId;
    if (userId !== principal.userId && !(await this.o.userExists(userId))) {
      throw new InputError(`user_id: no user with id "${userId}"`);
    }
    const app = await this.o.catalog.forLaunch(principal, input.appId);
    if (app.launch_type === 'url') {
      throw new InputError(`App "${app.id}" is a link (launch_type "url"), not something Sortie starts; open ${app.url} instead`);
    }
    this.o.runner.validate(app);
    const recorded = recordingChoice(app, input.record);

    const id = randomUUID();
    const at = this.now().toISOString();
    const pooled = (app.warm_pool ?? 0) > 0;
    let claimed: SessionsTable | undefined;
    // Every session enters as `queued`; the queue pass below starts it at once when there is room.
    await this.coordination.exclusive('admission', async () => {
      const active = await this.o.sessions.countActiveOf(userId);
      if (active >= this.o.maxSessionsPerUser) {
        const whose = userId === principal.userId ? 'You have' : `User "${userId}" has`;
        throw new TooManyRequestsError(
          `${whose} ${active} sessions queued, starting or running, and the limit is ${this.o.maxSessionsPerUser} per user ` +
            '(SORTIE_MAX_SESSIONS_PER_USER). End a session to make room, then launch again.',
          RETRY_AFTER_SECONDS,
        );
      }
      // A running session from the app's warm pool becomes this launch: it already counts toward every limit.
      if (pooled) claimed = await this.o.sessions.claimPooled(app.id, poolDefinition(app), userId, at);
      if (claimed) return;
      await this.o.sessions.insert({
        id,
        user_id: userId,
        app_id: app.id,
        app_name: app.name,
        pod_name: workloadName(id),
        status: 'queued',
        reason: null,
        endpoint: null,
        created_at: at,
        updated_at: at,
        last_active_at: at,
        stream_secret: vncPassword(),
        recorded: recorded ? 1 : 0,
        // Waiting for room is the first step; the queue pass that starts the session ends it.
        progress: JSON.stringify([{ step: 'queued', label: LAUNCH_STEP_LABELS.queued, started_at: at, ended_at: null } satisfies LaunchStep]),
      });
    });
    if (claimed && recorded) {
      await this.o.recordings?.markRecorded(claimed.id);
      claimed.recorded = 1;
    }
    if (pooled) this.o.metrics?.poolLaunch(app.id, claimed !== undefined);
    if (claimed) return this.claimedFromPool(principal, claimed);
    this.changed({ id, user_id: userId, status: 'queued' });
    this.arriving.add(id);
    try {
      await this.dispatch();
    } finally {
      this.arriving.delete(id);
    }
    const row = await this.o.sessions.get(id);
    if (!row) throw new NotFoundError(`No session with id "${id}"`);
    this.o.logger.info({ sessionId: id, appId: app.id, userId, status: row.status }, 'session created');
    this.o.audit?.record({ action: 'session.launch', actor: principal, target: { type: 'session', id, name: app.name }, details: { app_id: app.id, user_id: userId } });
    // The API answers with `creating` (or `queued`) at once; the workload's fate arrives as events.
    return this.present(row);
  }

  /** A launch took `row` from its app's warm pool: audited as any launch, and the pool refills. */
  private claimedFromPool(principal: Principal, row: SessionsTable): Session {
    this.changed(row);
    this.o.metrics?.sessionRunning(row);
    this.o.logger.info({ sessionId: row.id, appId: row.app_id, userId: row.user_id, status: row.status }, 'session taken from the warm pool');
    this.o.audit?.record({
      action: 'session.launch',
      actor: principal,
      target: { type: 'session', id: row.id, name: row.app_name },
      details: { app_id: row.app_id, user_id: row.user_id },
    });
    // After the answer is on its way: the refill's queries and its workload's creation are
    // nothing the person waits for.
    setImmediate(() => void this.refillPools());
    this.nameOwner(row);
    return toSession(row);
  }

  /**
   * Tells the runner who claimed a pooled session, so its workload names the owner as any
   * other does (the pod's user annotation was empty while pooled). Not awaited and never
   * fatal: the claim is in the database already, and a runner that may not say so (a Role
   * without `patch` on pods) only leaves the cluster's view behind.
   */
  private nameOwner(row: SessionsTable): void {
    if (!this.o.runner.assignOwner) return;
    this.o.runner.assignOwner(row.id, row.user_id).catch((err: unknown) =>
      this.o.logger.warn({ err: err instanceof Error ? err.message : String(err), sessionId: row.id, userId: row.user_id }, "could not name a claimed session's owner on its workload"),
    );
  }

  async get(principal: Principal, id: string): Promise<Session> {
    return this.present(await this.visibleRow(principal, id));
  }

  /**
   * A page of the caller's sessions, newest first; an admin's list holds everyone's unless
   * filtered. `next` is where the following page starts, null on the last one.
   */
  async list(
    principal: Principal,
    filter: { userId?: string; statuses?: readonly SessionStatus[] },
    page: { limit: number; after?: SessionListKey },
  ): Promise<{ sessions: Session[]; next: SessionListKey | null }> {
    const userId = principal.role === 'admin' ? filter.userId : principal.userId;
    const { rows, more } = await this.o.sessions.page({ ...filter, userId }, page);
    const last = rows.at(-1);
    const next = more && last ? { createdAt: last.created_at, id: last.id } : null;
    if (!rows.some((row) => row.status === 'queued')) return { sessions: rows.map((row) => ({ ...toSession(row), progress: this.stepsOf(row) })), next };
    // Places count the whole queue, not the page: a page's queued sessions show where they really stand.
    const places = new Map((await this.o.sessions.queuedIds()).map((queuedId, index) => [queuedId, index + 1]));
    return { sessions: rows.map((row) => ({ ...toSession(row), queue_position: places.get(row.id) ?? null, progress: this.stepsOf(row) })), next };
  }

  /** A row as the API shows it, with its place in the queue when it waits there. */
  private async present(row: SessionsTable): Promise<Session> {
    const session = toSession(row);
    if (row.status === 'queued' && row.arrival !== null) session.queue_position = await this.o.sessions.queuePosition(row.arrival);
    session.progress = this.stepsOf(row);
    return session;
  }

  /**
   * A launch's steps as the API shows them: while queued or creating only. From the row, so
   * every replica answers alike, whichever one watches the launch.
   */
  private stepsOf(row: SessionsTable): LaunchStep[] | null {
    if (row.status !== 'queued' && row.status !== 'creating') return null;
    return storedSteps(row);
  }

  /**
   * Writes into the row of `row` (creating) that its launch reached `step` at `at`. Every
   * replica's runner may report the step (each watches every workload), each at its own time:
   * only the replica watching this start (its ready timer: it launched or adopted it) gets here.
   * One write at a time per session, in the runner's order: events are handled so
   * (enqueueEvent) and each awaits its write. A failed write leaves the steps behind, never
   * the launch.
   */
  private async recordStep(row: SessionsTable, step: LaunchStepName, at: string): Promise<void> {
    const steps = withStep(storedSteps(row), step, at);
    if (!steps) return;
    try {
      await this.o.sessions.saveProgress(row.id, row.progress ?? null, JSON.stringify(steps));
    } catch (err) {
      this.o.logger.warn({ err, sessionId: row.id, step }, 'could not record a launch step');
      return;
    }
    this.changed(row);
  }

  /**
   * Starts queued sessions, first arrival first, while there is room: fewer than
   * SORTIE_MAX_SESSIONS starting or running, and fewer than the app's max_sessions. A session
   * whose app is full waits without holding up sessions of other apps behind it.
   * Resolves once a pass that began after this call has finished.
   */
  dispatch(): Promise<void> {
    // A pass that has not begun yet will see everything written before now: join it.
    if (this.pendingPass) return this.pendingPass;
    const pass: Promise<void> = this.coordination
      .exclusive('queue', async () => {
        this.pendingPass = undefined;
        // Never rejects: whatever stopped this pass, the next event that frees room tries again.
        await this.startQueued().catch((err: unknown) => this.o.logger.error({ err }, 'starting queued sessions failed'));
      })
      .catch((err: unknown) => {
        // The turn itself could not be taken (the database went away): the next call tries afresh.
        if (this.pendingPass === pass) this.pendingPass = undefined;
        if (!this.closed) this.o.logger.error({ err }, 'a queue pass could not begin');
      });
    this.pendingPass = pass;
    return pass;
  }

  private async startQueued(): Promise<void> {
    if (this.closed) return;
    const liveByApp = await this.o.sessions.countLiveByApp();
    let live = [...liveByApp.values()].reduce((sum, n) => sum + n, 0);
    // Full: during a burst most passes end here, without reading the queue.
    if (live >= this.o.maxSessions) return this.yieldPool(await this.o.sessions.countWithStatus('queued'), new Map());
    const maxStarting = this.o.maxStarting ?? Infinity;
    let starting = maxStarting === Infinity ? 0 : await this.o.sessions.countWithStatus('creating');
    if (starting >= maxStarting) return;
    const queued = await this.o.sessions.listQueued();
    const apps = new Map<string, App | undefined>();
    // Launches waiting for room a pooled session holds: the pool gives way (see poolToYield).
    let blockedByRoom = 0;
    const blockedByApp = new Map<string, number>();
    for (const [index, row] of queued.entries()) {
      if (starting >= maxStarting || this.closed) return;
      if (live >= this.o.maxSessions) {
        blockedByRoom = queued.length - index;
        break;
      }
      if (!apps.has(row.app_id)) apps.set(row.app_id, await this.o.appById(row.app_id));
      const app = apps.get(row.app_id);
      if (!app || app.launch_type !== 'container') {
        await this.fail(row.id, `App "${row.app_id}" was removed from the catalog (or made a link) while the session waited in the queue`, 'app_removed');
        continue;
      }
      const ofApp = liveByApp.get(app.id) ?? 0;
      if (app.max_sessions !== undefined && ofApp >= app.max_sessions) {
        blockedByApp.set(app.id, (blockedByApp.get(app.id) ?? 0) + 1);
        continue;
      }
      // Checked inside the UPDATE: a session ended while queued stays ended. Its queue step ends
      // in the same write (nothing else writes a queued session's steps).
      const now = this.now().toISOString();
      const progress = JSON.stringify(leftQueue(storedSteps(row), now, !this.arriving.has(row.id)));
      const started = await this.o.sessions.transition(row.id, 'creating', { last_active_at: now, progress });
      if (!started) continue;
      this.changed(started, true);
      this.o.metrics?.sessionStarted(started, now);
      live++;
      starting++;
      liveByApp.set(app.id, ofApp + 1);
      this.launch(started, app);
    }
    if (blockedByRoom > 0 || blockedByApp.size > 0) await this.yieldPool(blockedByRoom, blockedByApp);
  }

  /**
   * Ends pooled sessions whose place launches in the queue wait for: a pool keeps desktops warm
   * only with room nobody else needs. Their end frees the room and asks for the next queue pass.
   */
  private async yieldPool(blockedByRoom: number, blockedByApp: ReadonlyMap<string, number>): Promise<void> {
    if (blockedByRoom === 0 && blockedByApp.size === 0) return;
    const pooled = await this.o.sessions.listPooled();
    if (pooled.length === 0) return;
    const rows = pooled.map((row) => ({ id: row.id, app_id: row.app_id, pool_definition: row.pool_definition!, status: row.status }));
    for (const id of poolToYield(rows, blockedByRoom, blockedByApp)) {
      await this.endById(id, 'Gave its place in the warm pool to a launch waiting in the queue', { by: 'warm_pool', actor: 'system' });
    }
  }

  /**
   * Brings every app's warm pool to its size (see planRefill). A pass plans from the database
   * inside the queue's turn, taken across every replica, so two passes never both fill the same
   * gap or both take the last room: the later one finds the pool full. The periodic pass (tick)
   * and the one at start-up are the leading replica's alone; the pass after a claim or an end
   * runs where it happened, so a pool refills at once whichever replica served the launch.
   * Never rejects.
   */
  refillPools(): Promise<void> {
    const apps = this.o.apps;
    if (!apps || this.closed) return Promise.resolve();
    // A pass that has not begun yet will see everything written before now: join it.
    if (this.pendingRefill) return this.pendingRefill;
    const pass: Promise<void> = this.coordination
      .exclusive('queue', async () => {
        this.pendingRefill = undefined;
        await this.refillOnce(await apps());
      })
      .catch((err: unknown) => {
        if (this.pendingRefill === pass) this.pendingRefill = undefined;
        if (!this.closed) this.o.logger.error({ err }, 'refilling the warm pools failed');
      });
    this.pendingRefill = pass;
    return pass;
  }

  private async refillOnce(catalog: App[]): Promise<void> {
    if (this.closed) return;
    const pooled = (await this.o.sessions.listPooled()).map((row) => ({ id: row.id, app_id: row.app_id, pool_definition: row.pool_definition!, status: row.status }));
    const maxStarting = this.o.maxStarting ?? Infinity;
    const plan = planRefill(catalog, pooled, {
      liveByApp: await this.o.sessions.countLiveByApp(),
      maxSessions: this.o.maxSessions,
      starting: maxStarting === Infinity ? 0 : await this.o.sessions.countWithStatus('creating'),
      maxStarting,
      queued: await this.o.sessions.countWithStatus('queued'),
    });
    for (const { id, reason } of plan.end) await this.endById(id, reason, { by: 'warm_pool', actor: 'system' });
    for (const app of plan.start) {
      if (this.closed) return;
      const id = randomUUID();
      const at = this.now().toISOString();
      // Straight to `creating`: a pooled session never waits in the queue, planRefill started it only into free room.
      const row = await this.o.sessions.insert({
        id,
        user_id: POOL_OWNER,
        app_id: app.id,
        app_name: app.name,
        pod_name: workloadName(id),
        status: 'creating',
        reason: null,
        endpoint: null,
        created_at: at,
        updated_at: at,
        last_active_at: at,
        // Fresh per pooled session, as for any other: whoever claims it gets a secret nobody else had.
        stream_secret: vncPassword(),
        pool_definition: poolDefinition(app),
      });
      this.changed(row);
      this.o.logger.info({ sessionId: id, appId: app.id }, 'warm pool session starting');
      this.launch(row, app);
    }
  }

  /** Creates the workload of a session that just became `creating`; its fate arrives as events. */
  private launch(row: SessionsTable, app: App): void {
    const id = row.id;
    this.armReadyTimer(id, this.o.podReadyTimeoutMs);
    const spec = { sessionId: id, workloadName: row.pod_name, userId: row.user_id, app, streamSecret: row.stream_secret! };
    this.o.runner.launch(spec).catch((err: unknown) => {
      // A stop during launch (the user ended it already) also lands here; fail() then finds it final.
      this.fail(id, err instanceof Error ? err.message : String(err), 'launch_refused').catch((failure: unknown) =>
        this.o.logger.error({ err: failure, sessionId: id }, 'could not record a failed launch'),
      );
    });
  }

  /** Where to dial a running session's stream, and the VNC password to answer it with. */
  async streamTarget(principal: Principal, id: string): Promise<{ session: Session; endpoint?: Endpoint; secret?: string }> {
    const row = await this.visibleRow(principal, id);
    // A pooled desktop waits for whoever claims it: nobody, an admin included, looks at it before.
    if (row.status !== 'running' || !row.endpoint || row.pool_definition) return { session: await this.present(row) };
    return { session: toSession(row), endpoint: parseEndpoint(row.endpoint), ...(row.stream_secret ? { secret: row.stream_secret } : {}) };
  }

  /** Ends a session on request. Ending one that already ended answers with it unchanged. */
  async end(principal: Principal, id: string): Promise<Session> {
    const row = await this.visibleRow(principal, id);
    const own = row.user_id === principal.userId;
    return this.endById(id, own ? 'Ended by its user' : `Ended by ${principal.username}`, { by: own ? 'user' : 'admin', actor: principal });
  }

  private async endById(id: string, reason: string, ender: { by: SessionEndedBy; actor: AuditActor }): Promise<Session> {
    const ended = await this.o.sessions.transition(id, 'terminated', { reason, endpoint: null });
    if (ended) {
      this.auditEnd(ended, ender);
      await this.afterEnd(ended);
      return toSession(ended);
    }
    const row = await this.o.sessions.get(id);
    if (!row) throw new NotFoundError(`No session with id "${id}"`);
    return this.present(row);
  }

  /** Someone else's session answers exactly like a missing one, so ids cannot be probed. */
  private async visibleRow(principal: Principal, id: string): Promise<SessionsTable> {
    const row = await this.o.sessions.get(id);
    if (!row || (principal.role !== 'admin' && row.user_id !== principal.userId)) throw new NotFoundError(`No session with id "${id}"`);
    return row;
  }

  /** Records that a viewer is (or was just) connected, which keeps SESSION_TIMEOUT away. */
  async touch(ids: string[]): Promise<void> {
    if (this.closed) return;
    await this.o.sessions.touch(ids, this.now().toISOString());
  }

  /**
   * Fails sessions still `creating` well past POD_READY_TIMEOUT that no timer here watches:
   * the replica that launched them, whose timer would have, went away. Once across replicas,
   * by the leading one; the grace lets the launching replica's own timer answer first.
   */
  async failLateStarts(): Promise<number> {
    if (this.closed || !(await this.coordination.lead())) return 0;
    const cutoff = new Date(this.now().getTime() - this.o.podReadyTimeoutMs - LATE_START_GRACE_MS).toISOString();
    const late = (await this.o.sessions.listCreatingSince(cutoff)).filter((row) => !this.readyTimers.has(row.id));
    const seconds = Math.round((this.o.podReadyTimeoutMs / 1000) * 10) / 10;
    for (const row of late) await this.fail(row.id, `The session was not ready within ${seconds} seconds (POD_READY_TIMEOUT)`, 'start_timeout');
    return late.length;
  }

  /** Ends live sessions idle for longer than SESSION_TIMEOUT. */
  async expireIdle(): Promise<number> {
    // Once across replicas: the leading one sweeps (every replica records its own viewers first).
    if (!(await this.coordination.lead())) return 0;
    const cutoff = new Date(this.now().getTime() - this.o.sessionTimeoutMs).toISOString();
    const idle = await this.o.sessions.listLiveIdleSince(cutoff);
    const minutes = Math.round((this.o.sessionTimeoutMs / 60_000) * 100) / 100;
    for (const row of idle) {
      await this.endById(row.id, `Ended after ${minutes} minutes without a viewer (SESSION_TIMEOUT)`, { by: 'idle_timeout', actor: 'system' });
    }
    return idle.length;
  }

  /**
   * Starts the runner with this service as the one place its events go, then reconciles
   * what the runner found with what the database remembers.
   */
  async start(): Promise<ReconcileSummary> {
    const workloads = await this.o.runner.start((event) => this.enqueueEvent(event));
    this.queueTimer = setInterval(() => void this.tick(), this.o.queuePassIntervalMs ?? 10_000);
    this.queueTimer.unref();
    // Once across replicas: a replica starting beside a leading one finds its work done.
    if (!(await this.coordination.lead())) {
      await this.dispatch();
      return { adopted: 0, removed: 0, ended: 0 };
    }
    // Reconciling is a sweep of its own: the next ordinary one comes a minute on.
    this.leading = true;
    this.lastSweepAt = Date.now();
    return this.reconcile(workloads);
  }

  /**
   * The queue tick. Every replica makes a queue pass; then the one that leads (asked once per
   * tick: for a replica that does not, each asking is a connection to the database) refills
   * the warm pools, fails late starts and sweeps for orphaned workloads when a sweep is due.
   * Never rejects.
   */
  private async tick(): Promise<void> {
    await this.dispatch();
    let leads: boolean;
    try {
      leads = !this.closed && (await this.coordination.lead());
    } catch (err) {
      this.o.logger.error({ err }, 'could not ask whether this replica leads');
      return;
    }
    const tookOver = leads && !this.leading;
    this.leading = leads;
    if (!leads) {
      // Another replica sweeps now; what this one saw would be stale when it leads again.
      this.orphans.clear();
      return;
    }
    await this.refillPools();
    await this.failLateStarts().catch((err: unknown) => this.o.logger.error({ err }, 'checking for late starts failed'));
    await this.sweepWhenDue(tookOver);
  }

  /**
   * Sweeps for orphaned workloads, on the leading replica's tick, when a sweep is due: at once
   * when it has just started leading (the last leader may have died between ending a session
   * and removing its workload), then every orphanSweepIntervalMs, and one tick after a sweep
   * that found candidates, to confirm them. On the tick rather than a timer of its own, so a
   * replica that takes over is noticed within a tick. Listing every pod costs the API server
   * more than a queue pass costs the database, hence the minute between ordinary sweeps.
   * Never rejects.
   */
  private async sweepWhenDue(tookOver: boolean): Promise<void> {
    try {
      const interval = this.o.orphanSweepIntervalMs ?? ORPHAN_SWEEP_INTERVAL_MS;
      if (tookOver || this.orphans.size > 0 || Date.now() - this.lastSweepAt >= interval) await this.removeOrphans();
    } catch (err) {
      this.o.logger.error({ err }, 'looking for workloads whose session is over failed');
    }
  }

  /**
   * Removes workloads whose session is over (its row is final) or never was (no row): what a
   * replica that died after ending a session but before removing its workload left behind, a
   * pod created just after its launch was ended, a stop that failed. Live sessions' workloads
   * (`creating`, `running`, pooled or not) are never touched.
   *
   * Why this cannot take a launch in flight: a workload is created only after its row is
   * `creating` (inserted so, or moved there from `queued`, and committed before the runner is
   * asked), and a row that was live never becomes `queued` or live again once final. The
   * workloads are listed first and the live rows read after, so a workload listed whose row is
   * not live then is over for good. Another replica's insert and launch between the two reads
   * only adds a live row. On top of that a workload is removed only when two sweeps in a row
   * (at least a queue tick apart) found it so: a margin against a runner whose list shows a
   * workload before its creator's row is readable. Answers how many were removed.
   */
  async removeOrphans(): Promise<number> {
    this.sweeping ??= this.sweepOrphans().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOrphans(): Promise<number> {
    this.lastSweepAt = Date.now();
    const workloads = await this.o.runner.list();
    const live = new Set((await this.o.sessions.listLive()).map((row) => row.id));
    const seenBefore = this.orphans;
    this.orphans = new Set();
    let removed = 0;
    for (const { sessionId } of workloads) {
      if (live.has(sessionId)) continue;
      if (!seenBefore.has(sessionId)) {
        this.orphans.add(sessionId);
        continue;
      }
      if (this.closed) break;
      try {
        await this.o.runner.stop(sessionId);
        removed++;
        this.o.logger.info({ sessionId }, 'removed a workload whose session is over');
      } catch (err) {
        // The next sweep finds it again.
        this.o.logger.error({ err, sessionId }, 'could not remove a workload whose session is over');
        this.o.metrics?.runnerError('stop');
      }
    }
    return removed;
  }

  /**
   * Makes the database and the runner agree after a start-up: workloads without a live
   * session are removed, live sessions without a workload are ended, and the rest are
   * adopted with their current state.
   */
  async reconcile(workloads: Workload[]): Promise<ReconcileSummary> {
    const live = new Map((await this.o.sessions.listLive()).map((row) => [row.id, row]));
    let adopted = 0;
    let removed = 0;
    let ended = 0;
    for (const workload of workloads) {
      const row = live.get(workload.sessionId);
      live.delete(workload.sessionId);
      if (!row) {
        await this.o.runner.stop(workload.sessionId);
        removed++;
      } else if (workload.state === 'ended') {
        await this.fail(row.id, workload.reason ?? 'The session stopped while Sortie was not running', 'workload_lost');
        ended++;
      } else if (workload.state === 'ready' && workload.endpoint) {
        await this.handle({ type: 'ready', sessionId: row.id, endpoint: workload.endpoint });
        adopted++;
      } else {
        // updated_at is when it became `creating`: a session that waited queued is not late for that.
        const waited = this.now().getTime() - Date.parse(row.updated_at);
        this.armReadyTimer(row.id, Math.max(0, this.o.podReadyTimeoutMs - waited));
        adopted++;
      }
    }
    for (const row of live.values()) {
      // Beside other replicas, a start without a workload yet may be another replica's launch
      // between its insert and its pod: it gets the rest of its POD_READY_TIMEOUT, like any start.
      if (row.status === 'creating' && this.coordination.shared) {
        const waited = this.now().getTime() - Date.parse(row.updated_at);
        this.armReadyTimer(row.id, Math.max(0, this.o.podReadyTimeoutMs - waited));
        continue;
      }
      await this.endById(row.id, 'Its workload was gone when Sortie started again', { by: 'runner', actor: 'system' });
      ended++;
    }
    // Queued sessions waited in the database through the restart; start those there is room for, then the pools.
    await this.dispatch();
    await this.refillPools();
    return { adopted, removed, ended };
  }

  /**
   * A runner's events for one session are handled one after another, in the order the runner
   * sent them: handling awaits the database, and two steps reported back to back must not be
   * recorded the other way round when the second lookup happens to answer first.
   */
  private enqueueEvent(event: WorkloadEvent): void {
    void this.eventOrder
      .run(event.sessionId, () => this.handle(event))
      .catch((err: unknown) => this.o.logger.error({ err, event }, 'runner event handling failed'));
  }

  /** Runner events land here. */
  async handle(event: WorkloadEvent): Promise<void> {
    if (this.closed) return; // Sortie is stopping; the next start reconciles what happened
    switch (event.type) {
      case 'progress': {
        // Every replica's runner reports every step; only the one watching this start records
        // it (recordStep), so the others do not read the row for nothing. News only while the
        // session is starting; a late step of an ended one is dropped.
        if (!this.readyTimers.has(event.sessionId)) return;
        const row = await this.o.sessions.get(event.sessionId);
        if (row?.status === 'creating') await this.recordStep(row, event.step, event.at);
        return;
      }
      case 'ready': {
        this.clearReadyTimer(event.sessionId);
        const endpoint = `${event.endpoint.host}:${event.endpoint.port}`;
        const row = await this.o.sessions.transition(event.sessionId, 'running', { endpoint });
        if (row) {
          this.changed(row);
          // A pooled session's start is no launch anyone waited for; its claim is counted instead.
          if (!row.pool_definition) this.o.metrics?.sessionRunning(row);
          else for (const listener of this.pooledRunningListeners) listener(runningStream(row));
          this.o.logger.info({ sessionId: row.id, ms: Date.now() - Date.parse(row.created_at) }, 'session running');
          // No longer starting: under a start limit, the next queued session may begin.
          if (this.o.maxStarting !== undefined) await this.dispatch();
          return;
        }
        const current = await this.o.sessions.get(event.sessionId);
        if (current?.status === 'running') return; // already running (adopted again): nothing to do
        // Ready for a session that is gone or already final: nobody needs this workload.
        await this.o.runner.stop(event.sessionId);
        return;
      }
      case 'failed':
        await this.fail(event.sessionId, event.reason, 'workload_failed');
        return;
      case 'exited': {
        const row = await this.o.sessions.transition(event.sessionId, 'terminated', { reason: event.reason, endpoint: null });
        if (row) {
          this.auditEnd(row, { by: 'runner', actor: 'system' });
          await this.afterEnd(row);
        } else {
          await this.o.runner.stop(event.sessionId);
        }
        return;
      }
    }
  }

  /** Clears timers; sessions and workloads stay as they are for the next start to adopt. */
  close(): void {
    this.closed = true;
    clearInterval(this.queueTimer);
    for (const timer of this.readyTimers.values()) clearTimeout(timer);
    this.readyTimers.clear();
  }

  private async fail(id: string, reason: string, cause: FailureCause): Promise<void> {
    if (this.closed) return;
    const row = await this.o.sessions.transition(id, 'failed', { reason, endpoint: null });
    if (row) {
      this.o.logger.warn({ sessionId: id, reason }, 'session failed');
      this.auditEnd(row, { by: 'failure', actor: 'system' });
      this.o.metrics?.sessionFailed(row.app_id, cause);
      await this.afterEnd(row);
    } else {
      await this.o.runner.stop(id);
    }
  }

  private async afterEnd(row: SessionsTable): Promise<void> {
    this.clearReadyTimer(row.id);
    if (!isLive(row.status)) this.o.logger.info({ sessionId: row.id, status: row.status, reason: row.reason }, 'session ended');
    const session = toSession(row);
    for (const listener of this.endedListeners) listener(session);
    this.changed(row);
    // Room may have freed up. Not awaited: a queue pass that fails a session ends up here.
    void this.dispatch().then(() => this.refillPools());
    try {
      await this.o.runner.stop(row.id);
    } catch (err) {
      // The session is already final; a later reconcile removes what is left.
      this.o.logger.error({ err, sessionId: row.id }, 'could not remove the workload of an ended session');
      this.o.metrics?.runnerError('stop');
    }
  }

  private auditEnd(row: SessionsTable, ender: { by: SessionEndedBy; actor: AuditActor }): void {
    this.o.audit?.record({
      action: 'session.end',
      actor: ender.actor,
      target: { type: 'session', id: row.id, name: row.app_name },
      details: { by: ender.by, status: row.status, reason: row.reason, app_id: row.app_id, user_id: row.user_id },
    });
  }

  private armReadyTimer(id: string, ms: number): void {
    this.clearReadyTimer(id);
    const seconds = Math.round((this.o.podReadyTimeoutMs / 1000) * 10) / 10;
    const timer = setTimeout(() => {
      this.readyTimers.delete(id);
      void this.fail(id, `The session was not ready within ${seconds} seconds (POD_READY_TIMEOUT)`, 'start_timeout').catch((err: unknown) =>
        this.o.logger.error({ err, sessionId: id }, 'ready timeout handling failed'),
      );
    }, ms);
    timer.unref();
    this.readyTimers.set(id, timer);
  }

  private clearReadyTimer(id: string): void {
    const timer = this.readyTimers.get(id);
    if (timer) clearTimeout(timer);
    this.readyTimers.delete(id);
  }
}

/**
 * VNC passwords are at most 8 characters; letters and digits only, so no VNC server reads
 * one as a comment or option (x11vnc's password files treat "#" and "__" specially).
 */
function vncPassword(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 8 }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/** A row's launch steps as stored (SessionsTable.progress), oldest first. */
function storedSteps(row: SessionsTable): LaunchStep[] {
  return row.progress ? (JSON.parse(row.progress) as LaunchStep[]) : [];
}

/**
 * `steps` once the launch has reached `step` at `at`: the step before it ended then. Undefined
 * when `step` is already under way (no news).
 */
function withStep(steps: LaunchStep[], step: LaunchStepName, at: string): LaunchStep[] | undefined {
  const last = steps.at(-1);
  if (last?.step === step && last.ended_at === null) return undefined;
  // Runners' clocks are not the queue's; a step never ends before it began.
  if (last && last.ended_at === null) last.ended_at = at < last.started_at ? last.started_at : at;
  steps.push({ step, label: LAUNCH_STEP_LABELS[step], started_at: at, ended_at: null });
  return steps.slice(-MAX_STEPS);
}

/**
 * `steps` once the session left the queue at `at`. One that never `waited` (its own create()'s
 * queue pass started it) shows no queue step.
 */
function leftQueue(steps: LaunchStep[], at: string, waited: boolean): LaunchStep[] {
  const queued = steps.find((s) => s.step === 'queued' && s.ended_at === null);
  if (!queued) return steps;
  if (waited) queued.ended_at = at;
  else steps.splice(steps.indexOf(queued), 1);
  return steps;
}

function runningStream(row: SessionsTable): RunningStream {
  return { id: row.id, endpoint: parseEndpoint(row.endpoint!), ...(row.stream_secret ? { secret: row.stream_secret } : {}) };
}

function parseEndpoint(text: string): Endpoint {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
}

/**
 * Whether a launch of `app` is recorded: always for `always`, as asked for `optional`; asking
 * for what the app does not allow is a 400 that says what would work.
 */
function recordingChoice(app: App, record: boolean | undefined): boolean {
  const mode = app.recording ?? 'off';
  if (mode === 'always') {
    if (record === false) throw new InputError(`record: app "${app.id}" records every session (recording "always"); leave "record" out or set it to true`);
    return true;
  }
  if (mode === 'off') {
    if (record === true) throw new InputError(`record: app "${app.id}" is not recorded (recording "off"); leave "record" out or ask an admin to allow recording`);
    return false;
  }
  return record === true;
}
