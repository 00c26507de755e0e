import type { App } from '../../src/catalog/app.js';
import type { Endpoint, LaunchSpec, Runner, Workload, WorkloadEvent } from '../../src/runners/runner.js';

/**
 * Workloads that outlive one FakeRunner, the way pods and local processes outlive a Sortie
 * restart: give the same store to the runner of the next start and it finds them.
 */
export class FakeWorkloads {
  readonly live = new Map<string, Workload>();
  /** Session ids in the order launch() was called, over every runner that used this store. */
  readonly launched: string[] = [];
  /** Session ids in the order stop() was called (stop is idempotent: an id may repeat). */
  readonly stopped: string[] = [];
  /** The most workloads that existed at once. */
  peak = 0;
  /** Who each claimed pooled workload was handed to (assignOwner), by session id. */
  readonly owners = new Map<string, string>();
}

export interface FakeRunnerOptions {
  /**
   * Where every workload's stream is. Default 127.0.0.1:9 (nothing listens: the session
   * only has to be `running`); the relay benchmark gives a websockify it started.
   */
  endpoint?: Endpoint;
  /**
   * `auto` (default): launch() reports the session ready after `startLatencyMs`, like a pod
   * starting. `manual`: nothing happens until the test calls ready(), exit() or fail(), so
   * it can send events late, twice, or in any order.
   */
  events?: 'auto' | 'manual';
  /** How long a workload takes from launch() to ready in `auto`. Default 0. */
  startLatencyMs?: () => number;
  /** What the runner can hold (Runner.capacity); absent means no limit of its own. */
  capacity?: number;
  workloads?: FakeWorkloads;
  /**
   * Keep no record of workloads (launched, live, peak): a benchmark of Sortie's memory per
   * session then counts Sortie's alone. Restarts find nothing.
   */
  stateless?: boolean;
}

/**
 * A runner without processes. Everything else (HTTP API, session service, SQLite) is the
 * real thing, so tests of limits and the queue can launch hundreds of sessions in seconds,
 * service-level tests can send runner events exactly when they want, and benchmarks
 * measure Sortie alone.
 */
export class FakeRunner implements Runner {
  readonly kind = 'local' as const;
  readonly workloads: FakeWorkloads;
  /** Set to make the next launch() reject with it (as a quota refusal would), once. */
  launchError: Error | undefined;
  /** Set to make every assignOwner() reject with it (as a Role without `patch` on pods would). */
  assignOwnerError: Error | undefined;
  private onEvent: (event: WorkloadEvent) => void = () => {};
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly endpoint: Endpoint;

  constructor(private readonly options: FakeRunnerOptions = {}) {
    this.workloads = options.workloads ?? new FakeWorkloads();
    this.endpoint = options.endpoint ?? { host: '127.0.0.1', port: 9 };
    if (options.capacity !== undefined) this.capacity = () => options.capacity;
  }

  capacity?: () => number | undefined;

  validate(_app: App): void {}

  async start(onEvent: (event: WorkloadEvent) => void): Promise<Workload[]> {
    this.onEvent = onEvent;
    const found = [...this.workloads.live.values()].map((w) => ({ ...w }));
    // Workloads that were starting while no Sortie watched keep starting, and report ready.
    if (this.options.events !== 'manual') for (const w of found) if (w.state === 'starting') this.becomeReady(w.sessionId);
    return found;
  }

  async list(): Promise<Workload[]> {
    return [...this.workloads.live.values()].map((w) => ({ ...w }));
  }

  async launch(spec: LaunchSpec): Promise<void> {
    if (this.launchError) {
      const err = this.launchError;
      this.launchError = undefined;
      throw err;
    }
    if (this.options.stateless) {
      // After launch() resolves, as a real runner's watch would report it.
      setImmediate(() => this.onEvent({ type: 'ready', sessionId: spec.sessionId, endpoint: this.endpoint }));
      return;
    }
    const { live } = this.workloads;
    if (live.has(spec.sessionId)) throw new Error(`Session ${spec.sessionId} is already running`);
    live.set(spec.sessionId, { sessionId: spec.sessionId, state: 'starting' });
    this.workloads.launched.push(spec.sessionId);
    this.workloads.peak = Math.max(this.workloads.peak, live.size);
    if (this.options.events !== 'manual') this.becomeReady(spec.sessionId);
  }

  async assignOwner(sessionId: string, userId: string): Promise<void> {
    if (this.assignOwnerError) throw this.assignOwnerError;
    this.workloads.owners.set(sessionId, userId);
  }

  /** Reports the workload ready now (whether or not it still exists: a late event). */
  ready(sessionId: string): void {
    const workload = this.workloads.live.get(sessionId);
    if (workload) Object.assign(workload, { state: 'ready', endpoint: this.endpoint });
    this.onEvent({ type: 'ready', sessionId, endpoint: this.endpoint });
  }

  /** Reports that the workload reached a step of its start, at `at` (now by default). */
  progress(sessionId: string, step: Extract<WorkloadEvent, { type: 'progress' }>['step'], at = new Date()): void {
    this.onEvent({ type: 'progress', sessionId, step, at: at.toISOString() });
  }

  /** Reports that the workload ended on its own (the app quit). */
  exit(sessionId: string, reason: string): void {
    this.markEnded(sessionId, reason);
    this.onEvent({ type: 'exited', sessionId, reason });
  }

  /** Reports that the workload can never become (or stay) usable. */
  fail(sessionId: string, reason: string): void {
    this.markEnded(sessionId, reason);
    this.onEvent({ type: 'failed', sessionId, reason });
  }

  private markEnded(sessionId: string, reason: string): void {
    const workload = this.workloads.live.get(sessionId);
    if (workload) Object.assign(workload, { state: 'ended', reason, endpoint: undefined });
  }

  private becomeReady(sessionId: string): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.workloads.live.has(sessionId)) this.ready(sessionId);
    }, this.options.startLatencyMs?.() ?? 0);
    this.timers.add(timer);
  }

  async stop(sessionId: string): Promise<void> {
    if (this.options.stateless) return;
    this.workloads.stopped.push(sessionId);
    this.workloads.live.delete(sessionId);
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.onEvent = () => {};
  }
}
