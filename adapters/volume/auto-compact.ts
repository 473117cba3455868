import { type CompactReport, isStoreError } from '../../storage/index.ts';

/** After a failed automatic compaction (a full disk, say), wait this long before the next try. */
const RETRY_AFTER_MS = 10 * 60 * 1000;

interface Compactable {
  /** The volume taking no more appends with the largest share of garbage, if one has any. */
  mostGarbage(): { id: number; garbageRatio: number } | undefined;
  compact(id: number): Promise<CompactReport[]>;
}

/**
 * Compacts volumes whose garbage passes a share of their bytes, in the background, one at a
 * time. Poked after every delete and replace (what makes garbage). Only volumes that take no
 * more appends qualify: compacting the writable volume would seal it and start a new one each
 * time. A compaction that fails is logged and not retried for a while.
 */
export class AutoCompactor {
  readonly #store: Compactable;
  readonly #threshold: number;
  readonly #log: (line: string) => void;
  #running = false;
  #pausedUntil = 0;

  constructor(store: Compactable, threshold: number, log: (line: string) => void) {
    this.#store = store;
    this.#threshold = threshold;
    this.#log = log;
  }

  /**
   * Garbage grew: compact a volume past the share, unless a compaction is already running. Called
   * after every delete, so the usual answer (nothing to do) costs one pass over the volumes.
   */
  poke(): void {
    if (this.#running || Date.now() < this.#pausedUntil || !this.#target()) return;
    this.#running = true;
    void this.#run().finally(() => {
      this.#running = false;
    });
  }

  #target(): { id: number; garbageRatio: number } | undefined {
    const most = this.#store.mostGarbage();
    return most && most.garbageRatio >= this.#threshold ? most : undefined;
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        const target = this.#target();
        if (!target) return;
        this.#log(
          `volume ${target.id}: ${percent(target.garbageRatio)} garbage (compact-at ${percent(this.#threshold)}), compacting`,
        );
        for (const report of await this.#store.compact(target.id)) {
          this.#log(
            `volume ${report.volume}: compacted, ${report.reclaimedBytes} bytes reclaimed in ${(report.durationMs / 1000).toFixed(1)} s`,
          );
        }
      }
    } catch (err) {
      if (isStoreError(err, 'closed')) return;
      this.#pausedUntil = Date.now() + RETRY_AFTER_MS;
      const reason = err instanceof Error ? err.message : String(err);
      this.#log(`automatic compaction failed: ${reason}; next try in 10 minutes at the earliest`);
    }
  }
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(0)}%`;
}
