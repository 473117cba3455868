/**
 * Group commit: many writers, few flushes. `sync()` resolves once a flush that started after the
 * call has finished, so everything the caller wrote before calling is on disk. Callers that arrive
 * while a flush runs share the next one; a caller that finds no flush running starts one at once
 * (no waiting for company when there is a single writer).
 */
export class GroupCommit {
  readonly #flush: () => Promise<void>;
  #running = false;
  #next: Deferred | null = null;

  constructor(flush: () => Promise<void>) {
    this.#flush = flush;
  }

  sync(): Promise<void> {
    if (!this.#next) this.#next = deferred();
    const { promise } = this.#next;
    if (!this.#running) void this.#run();
    return promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#next) {
      const batch = this.#next;
      this.#next = null;
      try {
        await this.#flush();
        batch.resolve();
      } catch (err) {
        batch.reject(err);
      }
    }
    this.#running = false;
  }
}

export interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Promise.withResolvers, which Node 20 lacks. */
export function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
