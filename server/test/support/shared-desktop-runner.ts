import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { App } from '../../src/catalog/app.js';
import type { Endpoint, LaunchSpec, Runner, Workload, WorkloadEvent } from '../../src/runners/runner.js';

/**
 * A runner several Sortie processes share, the way replicas share a Kubernetes cluster: its
 * workloads are a JSON file every replica reads at start, and each "workload" is one desktop
 * the test started (Xvnc + websockify at `endpoint`), ready as soon as it is launched. The
 * desktop outlives any Sortie, as a pod does.
 */
export class SharedDesktopRunner implements Runner {
  readonly kind = 'local' as const;
  private onEvent: (event: WorkloadEvent) => void = () => {};

  constructor(
    private readonly storeFile: string,
    private readonly endpoint: Endpoint,
  ) {}

  validate(_app: App): void {}

  async start(onEvent: (event: WorkloadEvent) => void): Promise<Workload[]> {
    this.onEvent = onEvent;
    return this.read().map((sessionId) => ({ sessionId, state: 'ready' as const, endpoint: this.endpoint }));
  }

  async list(): Promise<Workload[]> {
    return this.read().map((sessionId) => ({ sessionId, state: 'ready' as const, endpoint: this.endpoint }));
  }

  async launch(spec: LaunchSpec): Promise<void> {
    this.write([...this.read().filter((id) => id !== spec.sessionId), spec.sessionId]);
    setImmediate(() => this.onEvent({ type: 'ready', sessionId: spec.sessionId, endpoint: this.endpoint }));
  }

  async stop(sessionId: string): Promise<void> {
    this.write(this.read().filter((id) => id !== sessionId));
  }

  async close(): Promise<void> {
    this.onEvent = () => {};
  }

  private read(): string[] {
    try {
      return JSON.parse(readFileSync(this.storeFile, 'utf8')) as string[];
    } catch {
      return [];
    }
  }

  private write(ids: string[]): void {
    writeFileSync(`${this.storeFile}.tmp`, JSON.stringify(ids));
    renameSync(`${this.storeFile}.tmp`, this.storeFile);
  }
}
