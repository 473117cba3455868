/** Told of every flush that made writes durable (the store's telemetry). */
export interface FlushObserver {
  readonly observed: boolean;
  flushed(writes: number, seconds: number): void;
}

/** The callers sharing the next flush, and how many writes they stand for. */
interface Batch extends Deferred {
  writes: number;
}

/**
 * Group commit: many writers, few flushes. `sync()` resolves once a flush that started after the
 * call has finished, so everything the caller wrote before calling is on disk. Callers that arrive
 * while a flush runs share the next one; a caller that finds no flush running starts one at once
 * (no waiting for company when there is a single writer).
 */
export class GroupCommit {
  readonly #flush: () => Promise<void>;
  readonly #observer: FlushObserver;
  #running = false;
  #next: Batch | null = null;

  constructor(flush: () => Promise<void>, observer: FlushObserver) {
    this.#flush = flush;
    this.#observer = observer;
  }

  /**
   * `writes`: how many writes the caller needs durable (1 for a write, 0 for a `sync` or a
   * close), so that a flush can tell how many writes it served.
   */
  sync(writes: number): Promise<void> {
    if (!this.#next) this.#next = { ...deferred(), writes: 0 };
    this.#next.writes += writes;
    const { promise } = this.#next;
    if (!this.#running) void this.#run();
    return promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#next) {
      const batch = this.#next;
      this.#next = null;
      // Read once: an observer that arrives mid-flush waits for the next one.
      const started = batch.writes > 0 && this.#observer.observed ? performance.now() : -1;
      try {
        await this.#flush();
        if (started >= 0)
          this.#observer.flushed(batch.writes, (performance.now() - started) / 1000);
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
