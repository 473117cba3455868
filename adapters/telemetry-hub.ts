import type { CompactReport, StoreObserver } from '../storage/index.ts';

/**
 * The observers of a store's events (`StoreTelemetry.observe`) and the calls that tell them.
 * Observers are kept in an array replaced whole on every change, so telling them is an indexed
 * loop over a snapshot: nothing allocated per event, nothing at all done when nobody observes,
 * and an observer that unsubscribes while being told changes nothing for that event. An
 * observer that throws is dropped for that call: metrics must never fail a write or a read.
 */
export class TelemetryHub {
  #observers: readonly StoreObserver[] = [];

  /** Whether anyone observes: callers skip the work of measuring an event (a clock read) if not. */
  get observed(): boolean {
    return this.#observers.length > 0;
  }

  observe(observer: StoreObserver): () => void {
    this.#observers = [...this.#observers, observer];
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      const at = this.#observers.indexOf(observer);
      if (at >= 0) this.#observers = this.#observers.filter((_, i) => i !== at);
    };
  }

  flushed(writes: number, seconds: number): void {
    const observers = this.#observers;
    for (let i = 0; i < observers.length; i++) {
      try {
        observers[i]?.flushed?.(writes, seconds);
      } catch {}
    }
  }

  corruptRead(volume: number): void {
    const observers = this.#observers;
    for (let i = 0; i < observers.length; i++) {
      try {
        observers[i]?.corruptRead?.(volume);
      } catch {}
    }
  }

  compacted(report: CompactReport): void {
    const observers = this.#observers;
    for (let i = 0; i < observers.length; i++) {
      try {
        observers[i]?.compacted?.(report);
      } catch {}
    }
  }
}
