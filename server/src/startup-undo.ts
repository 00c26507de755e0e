import type { Logger } from 'pino';

/**
 * What start-up has set going so far, stopped again, last first, when a later step fails
 * (a port taken, a database that refuses a migration, a runner that cannot start). The
 * process exits then anyway; an embedder or a test that catches the error must not be left
 * holding a database pool, the replicas' leader lock, a runner's watch, a listening port
 * or a timer. Once start-up has finished, Sortie.dispose stops everything, in its own order.
 */
export class StartupUndo {
  private readonly steps: Array<{ what: string; undo: () => unknown }> = [];

  constructor(private readonly logger: Logger) {}

  /** Answers `part`, to be stopped with `undo` if start-up fails from here on. */
  add<T>(what: string, part: T, undo: (part: T) => unknown): T {
    this.steps.push({ what, undo: () => undo(part) });
    return part;
  }

  /** Stops every part added, last first; a part that fails to stop is logged, and the rest still stop. */
  async run(): Promise<void> {
    for (const { what, undo } of this.steps.splice(0).reverse()) {
      try {
        await undo();
      } catch (err) {
        this.logger.warn({ err, part: what }, 'could not stop a part of a Sortie that failed to start');
      }
    }
  }
}
