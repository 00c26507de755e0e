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

/**
 * One Serial per key: steps with the same key run in order, steps with different keys do not
 * wait for each other. A key's queue is forgotten once it has drained.
 */
export class KeyedSerial {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, step: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(step);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with steps still queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
