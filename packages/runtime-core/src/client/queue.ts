/**
 * Runs async tasks one at a time in call order: later calls wait, they do not fail.
 * A failed task does not stop the queue.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /** Number of tasks waiting or running. */
  get pending(): number {
    return this.#pending;
  }

  /** Enqueues `task`; resolves or rejects with its result once every earlier task has settled. */
  run<T>(task: () => Promise<T>): Promise<T> {
    this.#pending++;
    const result = this.#tail.then(task, task);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result.finally(() => {
      this.#pending--;
    });
  }
}
