import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** What is awaited, for the error when it does not happen ("the session to run"). */
  what: string;
  timeoutMs?: number;
  /** How long between checks. */
  intervalMs?: number;
}

/** The awaited thing did not happen in time (a benchmark may report that rather than stop). */
export class WaitTimedOut extends Error {}

/**
 * Checks `predicate` until it returns something truthy, and resolves with that. The one way
 * tests and benchmarks wait for something outside them (a process, a port, a status): an
 * error thrown by the predicate ends the wait at once, so a check can also say "this will
 * never happen" instead of running out the clock.
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, options: WaitOptions): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const { what, timeoutMs = 10_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value as Exclude<T, false | 0 | '' | null | undefined>;
    if (Date.now() >= deadline) throw new WaitTimedOut(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

export { sleep };
