import { StoreError, type SyncReport } from '../../storage/index.ts';
import { diskError } from './store-errors.ts';
import type { FsyncMode } from './store-options.ts';
import type { Volume } from './volume.ts';

/**
 * When volume data reaches the disk, and the state after a flush failed. After a failed flush
 * the kernel may have dropped the dirty pages, and it reports that once, to one caller: a later
 * flush succeeds over the loss. Nothing written since the last good flush can be trusted, so the
 * store stops writing rather than guess (reads go on) until it is restarted.
 */
export class Durability {
  readonly #fsync: FsyncMode;
  /** Set when a flush failed: what is on disk is unknown. */
  #broken: StoreError | undefined;

  constructor(fsync: FsyncMode) {
    this.#fsync = fsync;
  }

  /** Refuses a write after a failed flush. */
  assertHealthy(): void {
    if (this.#broken) throw this.#broken;
  }

  /** A write's flush: with fsync `never` the OS decides when. */
  async durable(volume: Volume): Promise<void> {
    if (this.#fsync === 'never') return;
    await this.#flush(volume, 1);
  }

  /** Flushes every volume and syncs its index (`sync`). */
  async syncAll(volumes: Map<number, Volume>): Promise<SyncReport> {
    const started = performance.now();
    // After a failed flush, a flush that succeeds proves nothing about what was written before.
    this.assertHealthy();
    try {
      for (const volume of volumes.values()) {
        await this.#flush(volume, 0);
        await volume.index.sync();
      }
    } catch (err) {
      throw diskError(err);
    }
    return { volumes: volumes.size, durationMs: performance.now() - started };
  }

  /**
   * The data must be on disk at close; an index that cannot be written now only lags (see
   * IndexWriter.close), and the next start-up scans what it misses. After a failed flush,
   * another proves nothing: with fsync `always` every acknowledged write was flushed before its
   * answer, with `never` acknowledged writes may be lost, and close says so.
   */
  async flushForClose(volumes: Map<number, Volume>): Promise<void> {
    if (this.#broken) {
      if (this.#fsync === 'never') throw this.#broken;
      return;
    }
    for (const volume of volumes.values())
      await volume.flush(0).catch((err) => {
        throw diskError(err);
      });
  }

  /** Every flush of volume data goes through here, a write's or a `sync`'s. */
  async #flush(volume: Volume, writes: number): Promise<void> {
    try {
      await volume.flush(writes);
    } catch (err) {
      this.#broken ??= new StoreError(
        'io_error',
        'a flush to disk failed; the store takes no more writes until it is restarted',
        { cause: err },
      );
      throw diskError(err);
    }
  }
}
