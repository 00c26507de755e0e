import type { Runner, Workload, WorkloadEvent } from '../../src/runners/runner.js';
import { FakeRunner, type FakeRunnerOptions } from './fake-runner.js';

/** One set of workloads, watched by every replica (as each replica's watch of the namespace does). */
export class SharedRunner {
  readonly fake: FakeRunner;
  private readonly watchers = new Set<(event: WorkloadEvent) => void>();
  private readonly ready: Promise<Workload[]>;

  constructor(options: FakeRunnerOptions = {}) {
    this.fake = new FakeRunner(options);
    this.ready = this.fake.start((event) => {
      for (const watcher of this.watchers) watcher(event);
    });
  }

  /**
   * What one replica gets: the same workloads, its own watch. A watch `lagMs` behind hears each
   * event that much later and, as a replica's pod watch does, stamps a launch step with when it
   * saw it.
   */
  forReplica(watch: { lagMs?: number } = {}): Runner {
    let own: ((event: WorkloadEvent) => void) | undefined;
    return {
      kind: 'local',
      validate: (app) => this.fake.validate(app),
      start: async (onEvent) => {
        await this.ready;
        const lagMs = watch.lagMs;
        const heard: (event: WorkloadEvent) => void =
          lagMs === undefined
            ? onEvent
            : (event) => setTimeout(() => onEvent(event.type === 'progress' ? { ...event, at: new Date().toISOString() } : event), lagMs).unref();
        own = heard;
        this.watchers.add(heard);
        return [...this.fake.workloads.live.values()].map((w) => ({ ...w }));
      },
      list: () => this.fake.list(),
      launch: (spec) => this.fake.launch(spec),
      stop: (id) => this.fake.stop(id),
      close: async () => {
        if (own) this.watchers.delete(own);
      },
    };
  }
}
