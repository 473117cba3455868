import { StoreError } from '../../storage/index.ts';
import type { VolumeCounts } from './accounting.ts';
import { type Deferred, deferred, type FlushObserver, GroupCommit } from './group-commit.ts';
import {
  encodeEntries,
  type IndexEntry,
  type IndexWriter,
  MAX_VOLUME_BYTES,
} from './index-file.ts';
import { voidHeader } from './needle.ts';
import type { VolumeFile } from './volume-file.ts';

/** Bytes of adjacent slots, written with one call. */
interface Run {
  start: number;
  end: number;
  buffers: Buffer[];
  done: Deferred;
}

/** Runs up to this size are written on the event loop's thread (see VolumeFile.readNow). */
const SYNC_WRITE_MAX = 1024 * 1024;

/** writev takes at most IOV_MAX (1024 on Linux) buffers at once. */
const MAX_RUN_BUFFERS = 512;

/**
 * Zeros written ahead of the tail (issue 13 item 2): a flush of bytes written over space the
 * file already has commits data only, a flush after an append also commits the new size (a
 * journal commit on ext4), 28-35 % more per flush here (docs/PERFORMANCE.md). `step`: how far
 * ahead; the next zeros are written once less than half of it is left. `limit`: no zeros past it
 * (the volume size, at which the volume takes no more appends).
 */
export interface Presize {
  step: number;
  limit: number;
}

/**
 * Zeros are written only while the filesystem has this many steps free: they must not take the
 * last space of a disk, which the index and the needles past the zeros still need.
 */
const FREE_STEPS = 4;

/** Space handed to one write; its index entries follow the entries of all earlier slots. */
export interface Slot {
  readonly offset: number;
  readonly length: number;
  /** Encoded index entries once the write is durable; null if it failed; undefined while open. */
  entries: Buffer | null | undefined;
}

/**
 * A volume open for use: its file, its index writer, where the next append goes, and the group
 * commit that makes appends durable. Appends reserve space first (synchronously, so offsets are
 * handed out in order) and write it concurrently; index entries are still written in volume
 * order, so the index always describes a prefix of the volume.
 */
export class Volume {
  file: VolumeFile;
  index: IndexWriter;
  readonly counts: VolumeCounts;
  /** Marked read-only by an operator (persisted as `N.readonly`): never appended to again. */
  readOnly = false;
  #tail: number;
  #commit: GroupCommit;
  readonly #flushes: FlushObserver;
  /** Waiting for every slot to be completed or abandoned. */
  #settledWaiters: Array<() => void> = [];
  readonly #slots: Slot[] = [];
  /** Writes waiting for the end of this turn of the event loop, in runs of adjacent bytes. */
  readonly #runs: Run[] = [];
  #writeScheduled = false;
  /** Set while this volume takes appends and its zeros are wanted (see Presize). */
  #presize: Presize | undefined;
  /** The zeros being written ahead, or the cut of a sealed volume; never rejects. */
  #background: Promise<void> | undefined;
  /**
   * A flush that failed. The kernel reports a failed flush once, and a later one succeeds over
   * what was lost: when the failure met a flush of zeros, no writer saw it, so every later flush
   * of this volume fails with it (the store then stops writing, see Durability).
   */
  #failedFlush: { error: unknown } | undefined;

  constructor(file: VolumeFile, index: IndexWriter, counts: VolumeCounts, flushes: FlushObserver) {
    this.file = file;
    this.index = index;
    this.counts = counts;
    this.#tail = file.size;
    this.#flushes = flushes;
    this.#commit = new GroupCommit(() => this.#syncData(), flushes);
  }

  /** Writes zeros ahead of the tail from now on (the volume takes appends). */
  presize(presize: Presize): void {
    this.#presize = presize;
  }

  /**
   * The volume takes no more appends: no more zeros, and those written ahead are cut off once
   * the writes in progress are done, so that the file ends at its last needle. Bytes of a write
   * that failed and gave its space back stay, as without zeros: start-up may find the needle
   * whole, and then its key is never handed out again.
   */
  async seal(): Promise<void> {
    this.#presize = undefined;
    await this.settled();
    const end = Math.max(this.#tail, this.file.writtenEnd);
    if (this.file.size <= end) return;
    const cut = this.file.cut(end).catch(() => {}); // zeros left behind are harmless
    this.#background = cut;
    await cut;
    if (this.#background === cut) this.#background = undefined;
  }

  /** Resolves once every write to this volume in progress has finished (or failed). */
  async settled(): Promise<void> {
    if (this.#slots.length > 0) {
      await new Promise<void>((resolve) => this.#settledWaiters.push(resolve));
    }
    await this.#background;
  }

  /**
   * Swaps in a compacted copy of this volume (same id). The caller has stopped appends to it and
   * waited for `settled`; reads that already hold the old file finish on it.
   */
  replaceFile(file: VolumeFile, index: IndexWriter): { file: VolumeFile; index: IndexWriter } {
    const old = { file: this.file, index: this.index };
    this.file = file;
    this.index = index;
    this.#tail = file.size;
    this.#commit = new GroupCommit(() => this.#syncData(), this.#flushes);
    return old;
  }

  get id(): number {
    return this.file.id;
  }

  /** Bytes in use, including space reserved by writes in progress. */
  get tail(): number {
    return this.#tail;
  }

  reserve(length: number): Slot {
    if (this.#tail + length > MAX_VOLUME_BYTES) {
      throw new StoreError('no_space', `volume ${this.id} is full (${MAX_VOLUME_BYTES} bytes)`);
    }
    const slot: Slot = { offset: this.#tail, length, entries: undefined };
    this.#tail += length;
    this.#slots.push(slot);
    if (this.#presize && !this.#background) this.#zeroAheadIfShort(this.#presize);
    return slot;
  }

  #zeroAheadIfShort({ step, limit }: Presize): void {
    const target = Math.min(this.#tail + step, limit);
    if (this.file.size - this.#tail >= step / 2 || target <= this.file.size) return;
    const work = this.#zeroAhead(target);
    this.#background = work;
    void work.finally(() => {
      if (this.#background === work) this.#background = undefined;
    });
  }

  /** Zeros up to `target` a piece at a time, each flushed (writers' flushes share them). */
  async #zeroAhead(target: number): Promise<void> {
    const free = await this.file.freeBytes().catch(() => 0);
    // Low on space: no more zeros in this volume; appends grow the file as they would without.
    if (!this.#presize || free < FREE_STEPS * this.#presize.step) this.#presize = undefined;
    while (this.#presize) {
      let written: number;
      try {
        written = await this.file.extendWithZeros(target);
      } catch {
        // A full disk, say: appends go on growing the file, as they would without zeros.
        this.#presize = undefined;
        return;
      }
      if (written === 0) return;
      // A failure is kept for the next writer's flush (see #failedFlush). It makes no write
      // durable: 0, so the flush metrics count only writers' flushes.
      const flushed = await this.flush(0).then(
        () => true,
        () => false,
      );
      if (!flushed) return;
    }
  }

  async #syncData(): Promise<void> {
    if (this.#failedFlush) throw this.#failedFlush.error;
    try {
      await this.file.datasync();
    } catch (err) {
      this.#failedFlush = { error: err };
      throw err;
    }
  }

  /**
   * Writes a slot's bytes. Slots written in the same turn of the event loop that lie side by side
   * go out in one `writev`: one trip to the thread pool for many small files.
   */
  write(slot: Slot, buffers: readonly Buffer[]): Promise<void> {
    let run = this.#runs.at(-1);
    if (!run || run.end !== slot.offset || run.buffers.length >= MAX_RUN_BUFFERS) {
      run = { start: slot.offset, end: slot.offset, buffers: [], done: deferred() };
      this.#runs.push(run);
    }
    run.buffers.push(...buffers);
    run.end += slot.length;
    if (!this.#writeScheduled) {
      this.#writeScheduled = true;
      setImmediate(() => this.#writeRuns());
    }
    return run.done.promise;
  }

  #writeRuns(): void {
    this.#writeScheduled = false;
    for (const run of this.#runs.splice(0)) {
      // Large runs, and runs that must wait for zeros being written there, go through the pool.
      if (run.end - run.start > SYNC_WRITE_MAX || this.file.zeroingOverlaps(run.start, run.end)) {
        this.file.write(run.buffers, run.start).then(run.done.resolve, run.done.reject);
        continue;
      }
      // Small runs only reach the page cache: cheaper here than through the thread pool.
      try {
        this.file.writeNow(run.buffers, run.start);
        run.done.resolve();
      } catch (err) {
        run.done.reject(err);
      }
    }
  }

  /**
   * Resolves once everything written to the volume before the call is on disk. `writes`: how
   * many writes the caller makes durable this way (see GroupCommit.sync).
   */
  flush(writes: number): Promise<void> {
    return this.#commit.sync(writes);
  }

  /** The slot's write is durable: queue its index entries behind those of earlier slots. */
  complete(slot: Slot, entries: readonly IndexEntry[]): void {
    slot.entries = encodeEntries(entries);
    this.#drain();
  }

  /**
   * The slot's write failed. The last slot gives its space back; an earlier one is marked as a
   * void needle so that scans step over it (if even that write fails, scans resync past it).
   * Resolves true when the space stays behind as a hole: garbage, until compaction.
   */
  async abandon(slot: Slot): Promise<boolean> {
    slot.entries = null;
    const givenBack = this.#tail === slot.offset + slot.length;
    if (givenBack) {
      this.#tail = slot.offset;
    } else {
      await this.file.write([voidHeader(slot.length)], slot.offset).catch(() => {});
    }
    this.#drain();
    return !givenBack;
  }

  #drain(): void {
    const ready: Buffer[] = [];
    let done = 0;
    for (const slot of this.#slots) {
      if (slot.entries === undefined) break;
      if (slot.entries) ready.push(slot.entries);
      done++;
    }
    if (done === 0) return;
    this.#slots.splice(0, done);
    if (ready.length > 0) this.index.append(Buffer.concat(ready));
    if (this.#slots.length === 0) for (const wake of this.#settledWaiters.splice(0)) wake();
  }
}
