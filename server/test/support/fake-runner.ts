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
  /** The most workloads that existed at once. */
  peak = 0;
}

export interface FakeRunnerOptions {
  /** How long a workload takes from launch() to ready, like a pod starting. Default 0. */
  startLatencyMs?: () => number;
  /** What the runner can hold (Runner.capacity); absent means no limit of its own. */
  capacity?: number;
  workloads?: FakeWorkloads;
}

/**
 * A runner without processes: launch() reports the session ready after a simulated start
 * latency. Everything else (HTTP API, session service, SQLite) is the real thing, so tests
 * of limits and the queue can launch hundreds of sessions in seconds.
 */
export class FakeRunner implements Runner {
  readonly kind = 'local' as const;
  readonly workloads: FakeWorkloads;
  private onEvent: (event: WorkloadEvent) => void = () => {};
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly endpoint: Endpoint = { host: '127.0.0.1', port: 9 };

  constructor(private readonly options: FakeRunnerOptions = {}) {
    this.workloads = options.workloads ?? new FakeWorkloads();
    if (options.capacity !== undefined) this.capacity = () => options.capacity;
  }

  capacity?: () => number | undefined;

  validate(_app: App): void {}

  async start(onEvent: (event: WorkloadEvent) => void): Promise<Workload[]> {
    this.onEvent = onEvent;
    const found = [...this.workloads.live.values()].map((w) => ({ ...w }));
    // Workloads that were starting while no Sortie watched keep starting, and report ready.
    for (const w of found) if (w.state === 'starting') this.becomeReady(w.sessionId);
    return found;
  }

  async launch(spec: LaunchSpec): Promise<void> {
    const { live } = this.workloads;
    if (live.has(spec.sessionId)) throw new Error(`Session ${spec.sessionId} is already running`);
    live.set(spec.sessionId, { sessionId: spec.sessionId, state: 'starting' });
    this.workloads.launched.push(spec.sessionId);
    this.workloads.peak = Math.max(this.workloads.peak, live.size);
    this.becomeReady(spec.sessionId);
  }

  private becomeReady(sessionId: string): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const workload = this.workloads.live.get(sessionId);
      if (!workload) return;
      workload.state = 'ready';
      workload.endpoint = this.endpoint;
      this.onEvent({ type: 'ready', sessionId, endpoint: this.endpoint });
    }, this.options.startLatencyMs?.() ?? 0);
    this.timers.add(timer);
  }

  async stop(sessionId: string): Promise<void> {
    this.workloads.live.delete(sessionId);
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.onEvent = () => {};
  }
}
