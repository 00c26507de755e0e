/**
 * Runs async steps one after another, in the order they were asked for. SQLite serialises
 * single statements, but a check followed by a write (count a user's sessions, then insert)
 * needs the pair to be one step.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.tail.then(step);
    // The next step runs after this one whether it succeeded or not.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
