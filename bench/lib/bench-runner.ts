import type { App } from '../../server/src/catalog/app.js';
import type { Endpoint, LaunchSpec, Runner, Workload, WorkloadEvent } from '../../server/src/runners/runner.js';

/**
 * A runner whose "workload" is a websockify the bench already started: launch() reports
 * the session ready at that endpoint straight away. Everything else in Sortie (HTTP API,
 * session service, SQLite, stream relay) is the real thing.
 */
export class BenchRunner implements Runner {
  readonly kind = 'local' as const;
  private onEvent: (event: WorkloadEvent) => void = () => {};

  constructor(private readonly endpoint: Endpoint) {}

  validate(_app: App): void {}

  async start(onEvent: (event: WorkloadEvent) => void): Promise<Workload[]> {
    this.onEvent = onEvent;
    return [];
  }

  async launch(spec: LaunchSpec): Promise<void> {
    // After launch() resolves, as a real runner's watch would report it.
    setImmediate(() => this.onEvent({ type: 'ready', sessionId: spec.sessionId, endpoint: this.endpoint }));
  }

  async stop(_sessionId: string): Promise<void> {}

  async close(): Promise<void> {}
}
