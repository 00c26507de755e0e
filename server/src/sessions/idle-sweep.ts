import type { Logger } from 'pino';

/** The timer functions the sweep uses; tests pass their own to run sweeps by hand. */
export interface IntervalClock {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const realClock: IntervalClock = {
  setInterval: (callback, ms) => setInterval(callback, ms).unref(),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

export interface IdleSweepOptions {
  /** What the sweep needs of the session service. */
  sessions: { touch(ids: string[]): Promise<void>; expireIdle(): Promise<number> };
  /** Sessions someone is watching right now: they are not idle, whatever the database says. */
  watched: () => string[];
  /** SESSION_CLEANUP_INTERVAL. */
  intervalMs: number;
  logger: Logger;
  clock?: IntervalClock;
}

/**
 * Ends sessions nobody has watched for SESSION_TIMEOUT, every SESSION_CLEANUP_INTERVAL.
 * Open streams count as watching, so they are recorded first; a long-lived viewer would
 * otherwise look idle since it connected. One sweep at a time: a slow one is not stacked.
 */
export class IdleSweep {
  private readonly clock: IntervalClock;
  private handle: unknown;
  private running: Promise<number> | undefined;

  constructor(private readonly o: IdleSweepOptions) {
    this.clock = o.clock ?? realClock;
  }

  start(): void {
    this.handle ??= this.clock.setInterval(() => void this.sweep(), this.o.intervalMs);
  }

  stop(): void {
    if (this.handle !== undefined) this.clock.clearInterval(this.handle);
    this.handle = undefined;
  }

  /** One sweep; resolves to the number of sessions it ended (0 when it failed, which it logs). */
  sweep(): Promise<number> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<number> {
    try {
      await this.o.sessions.touch(this.o.watched());
      const expired = await this.o.sessions.expireIdle();
      if (expired > 0) this.o.logger.info({ expired }, 'ended idle sessions');
      return expired;
    } catch (err) {
      this.o.logger.error({ err }, 'session cleanup failed');
      return 0;
    }
  }
}
