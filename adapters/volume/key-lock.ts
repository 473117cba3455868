import type { Key } from '../../storage/index.ts';

/**
 * Runs operations one at a time per key, in the order they arrive: writes that look at a key's
 * file and then change it (delete, replace, a replica write) must not interleave on one key.
 */
export class KeyLock {
  readonly #queues = new Map<Key, Promise<unknown>>();

  async run<T>(key: Key, operation: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(key);
    const current = (previous ?? Promise.resolve()).catch(() => {}).then(operation);
    this.#queues.set(key, current);
    try {
      return await current;
    } finally {
      if (this.#queues.get(key) === current) this.#queues.delete(key);
    }
  }

  /** Keys with an operation running or waiting (for tests: the lock forgets finished keys). */
  get size(): number {
    return this.#queues.size;
  }
}
