/**
 * Reused buffers for whole-file reads of mid-size needles. A fresh buffer per read of tens of
 * kilobytes (a slab slice or its own allocation) is external memory that V8 answers with
 * mark-compacts every few dozen milliseconds under load (docs/PERFORMANCE.md, "Read buffers");
 * a buffer given back once its answer has been sent is read into again instead.
 *
 * Buffers come in size classes, powers of two from 16 KiB to 1 MiB, each with its own free list.
 * A lease hands out a class buffer cut to the length asked; `release` puts it back on its free
 * list, once (a second call does nothing, so a buffer is never on a free list twice, and so
 * never handed to two reads at once). The pool keeps no reference to a leased buffer: one never
 * released is collected like any other, and the pool allocates anew, so a holder that never
 * gives back loses only the saving. A free list holds a bounded number of bytes; a release past
 * the bound drops the buffer to the collector.
 */

/** The smallest class; a class serves the lengths above half its size (see `pooledLength`). */
export const POOL_MIN_CLASS = 16 * 1024;
/** The largest class: larger reads are rare enough that a fresh buffer each costs little. */
export const POOL_MAX_CLASS = 1024 * 1024;
const MIN_BITS = 14; // log2(POOL_MIN_CLASS)
const CLASS_COUNT = 7; // 16, 32, 64, 128, 256, 512 KiB and 1 MiB

/**
 * Bytes the free lists may hold in all, idle, split evenly between the classes (about 4.6 MiB
 * each: 36 buffers of 128 KiB, the class of a 64 KiB file's needle). Enough for a burst of
 * answers held by slow clients to come back for the next burst, small beside what the process
 * holds anyway (the needle cache's tested 64 MiB, Node's own baseline); buffers held by answers
 * in flight are not counted, as they would be allocated without the pool too.
 */
export const MAX_FREE_BYTES = 32 * 1024 * 1024;

/** A buffer of exactly the length asked, until `release` gives it back (see the module comment). */
export interface Lease {
  readonly bytes: Buffer;
  readonly release: () => void;
}

/** What the pool has done since it was made: for tests and benchmarks. */
export interface ReadPoolStats {
  leases: number;
  /** Leases served from a free list rather than a new buffer. */
  reused: number;
  /** Buffers given back (a second release of the same lease is not counted). */
  released: number;
  /** Given back while the class's free list was full, and left to the collector. */
  dropped: number;
  /** Bytes on the free lists now. */
  freeBytes: number;
}

export class ReadPool {
  readonly #free: Buffer[][] = Array.from({ length: CLASS_COUNT }, () => []);
  /** How many buffers each class's free list may hold. */
  readonly #limits: number[];
  #leases = 0;
  #reused = 0;
  #released = 0;
  #dropped = 0;
  #freeBytes = 0;

  constructor(maxFreeBytes = MAX_FREE_BYTES) {
    if (!Number.isSafeInteger(maxFreeBytes) || maxFreeBytes < 0) {
      throw new RangeError(`maxFreeBytes must be a byte count, got ${maxFreeBytes}`);
    }
    const perClass = maxFreeBytes / CLASS_COUNT;
    this.#limits = Array.from({ length: CLASS_COUNT }, (_, i) =>
      Math.floor(perClass / classSize(i)),
    );
  }

  /** A buffer of `length` bytes (1 MiB at most), its contents whatever was read into it last. */
  lease(length: number): Lease {
    if (!Number.isSafeInteger(length) || length < 0 || length > POOL_MAX_CLASS) {
      throw new RangeError(`a pooled read is 0 to ${POOL_MAX_CLASS} bytes, not ${length}`);
    }
    const index = classOf(length);
    const free = this.#free[index] as Buffer[];
    let buffer = free.pop();
    if (buffer === undefined) {
      buffer = Buffer.allocUnsafeSlow(classSize(index));
    } else {
      this.#reused++;
      this.#freeBytes -= buffer.byteLength;
    }
    this.#leases++;
    let leased = true;
    const release = () => {
      if (!leased) return;
      leased = false;
      this.#giveBack(index, buffer);
    };
    return { bytes: buffer.subarray(0, length), release };
  }

  stats(): ReadPoolStats {
    return {
      leases: this.#leases,
      reused: this.#reused,
      released: this.#released,
      dropped: this.#dropped,
      freeBytes: this.#freeBytes,
    };
  }

  #giveBack(index: number, buffer: Buffer): void {
    this.#released++;
    const free = this.#free[index] as Buffer[];
    if (free.length >= (this.#limits[index] as number)) {
      this.#dropped++;
      return;
    }
    free.push(buffer);
    this.#freeBytes += buffer.byteLength;
  }
}

/**
 * Whether a read of `length` bytes should come from the pool: lengths above half the smallest
 * class, up to the largest. Below, a 16 KiB buffer would hold less than it wastes, and slab
 * slices (read-slab.ts) take a fresh megabyte only every hundred reads or more.
 */
export function pooledLength(length: number): boolean {
  return length > POOL_MIN_CLASS / 2 && length <= POOL_MAX_CLASS;
}

/** The process's pool: one for every store, so many replicas on a node share one bound. */
export const readPool = new ReadPool();

function classOf(length: number): number {
  const bits = length <= 1 ? 0 : 32 - Math.clz32(length - 1);
  return Math.max(0, bits - MIN_BITS);
}

function classSize(index: number): number {
  return 1 << (MIN_BITS + index);
}
